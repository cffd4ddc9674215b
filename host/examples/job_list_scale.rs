//! The first page of `/jobs` with 1,000,000 jobs stored, for every filter
//! alone and in combinations, on sled and on PostgreSQL.
//!
//! Run with
//! `cargo run --release -p wasmproc --example job_list_scale -- sled /tmp/joblist-sled`
//! or
//! `cargo run --release -p wasmproc --example job_list_scale -- postgres postgres://postgres@127.0.0.1:54329/joblist`
//! (the database must exist). An optional third argument is the job count
//! (default 1,000,000). A store that already holds that many jobs is
//! reused, so a second run measures without filling again.
//!
//! Filling goes through the store API (the same writes the server makes).
//! The jobs: 10 processes (`p0` with 60% of the jobs, `p9` with 0.1%),
//! 90% successful, 10% failed, durations 0–120 s, created over the last 30
//! days, plus 100 queued and 20 running. Each query is the store's
//! `list_jobs` with `limit=10` (what `GET /jobs` calls; HTTP adds the same
//! ~50 µs to every row), timed 200 times after 20 warm-up calls; the output
//! is one line per query with p50 and p99 in milliseconds, and a Markdown
//! table at the end.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use wasmproc::config::{Secret, StoreBackend, StoreConfig};
use wasmproc::failure::FailureKind;
use wasmproc::ogc::{ExecuteRequest, JobStatus};
use wasmproc::store::{JobFilter, JobQuery, JobRecord, NodeIdentity, Store};

const REPEATS: usize = 200;
const WARMUP: usize = 20;

/// A small deterministic generator (xorshift), so every run stores the
/// same jobs.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn process_of(r: &mut Random) -> String {
    // p0 60%, p1..p8 ~5% each, p9 0.1%.
    let x = r.below(1000);
    let p = match x {
        0..600 => 0,
        600..999 => 1 + (x - 600) % 8,
        _ => 9,
    };
    format!("p{p}")
}

fn finished_job(r: &mut Random, now: DateTime<Utc>) -> JobRecord {
    let mut job = JobRecord::new(&process_of(r), "sha", ExecuteRequest::default(), true);
    let age_ms = r.below(30 * 24 * 3600 * 1000) as i64 + 200_000;
    job.created = now - chrono::Duration::milliseconds(age_ms);
    job.started = Some(job.created + chrono::Duration::milliseconds(5));
    let duration = r.below(120_000) as i64;
    let finished = job.started.unwrap() + chrono::Duration::milliseconds(duration);
    if r.below(10) == 0 {
        job.mark_failed(FailureKind::Trap, "it trapped");
    } else {
        job.status = JobStatus::Successful;
    }
    job.finished = Some(finished);
    job.updated = finished;
    job
}

async fn fill(store: &Store, count: usize) {
    let now = Utc::now();
    let started = Instant::now();
    let mut r = Random(0x5eed);
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..count {
        let job = finished_job(&mut r, now);
        let store = store.clone();
        pending.spawn(async move { store.insert_failed_job(&job).await });
        if pending.len() >= 32 {
            pending.join_next().await.unwrap().unwrap().unwrap();
        }
        if i % 100_000 == 0 && i > 0 {
            eprintln!(
                "  {i} jobs stored ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    while let Some(done) = pending.join_next().await {
        done.unwrap().unwrap();
    }
    for _ in 0..100 {
        let job = JobRecord::new(&process_of(&mut r), "sha", ExecuteRequest::default(), true);
        store.enqueue_job(&job, 1_000_000).await.unwrap();
    }
    store.claim_jobs(20).await.unwrap();
    eprintln!(
        "filled {count} jobs in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (backend, place) = match args.as_slice() {
        [b, p, ..] => (b.clone(), p.clone()),
        _ => {
            eprintln!("usage: job_list_scale sled DIR | postgres URL [COUNT]");
            std::process::exit(2);
        }
    };
    let count: usize = args
        .get(2)
        .map_or(1_000_000, |c| c.parse().expect("a count"));
    let (config, dir) = match backend.as_str() {
        "sled" => (StoreConfig::default(), std::path::PathBuf::from(&place)),
        "postgres" => (
            StoreConfig {
                backend: StoreBackend::Postgres,
                url: Some(Secret::new(place.clone())),
                timeout: Duration::from_secs(30),
                ..StoreConfig::default()
            },
            std::env::temp_dir(),
        ),
        other => panic!("unknown backend {other}"),
    };
    let store = Store::open(
        &config,
        &dir,
        NodeIdentity::new("bench", Duration::from_secs(3600), 3),
    )
    .await
    .expect("open the store");
    store.recover().await.expect("recover");
    let stored = store.job_count().await.unwrap() as usize;
    if stored < count {
        eprintln!("{stored} jobs stored; filling to {count}");
        fill(&store, count - stored).await;
    } else {
        eprintln!("reusing {stored} stored jobs");
    }

    let now = Utc::now();
    let f = JobFilter::default;
    let queries: Vec<(&str, JobFilter)> = vec![
        ("(none)", f()),
        (
            "processID=p0 (60%)",
            JobFilter {
                process_ids: vec!["p0".into()],
                ..f()
            },
        ),
        (
            "processID=p9 (0.1%)",
            JobFilter {
                process_ids: vec!["p9".into()],
                ..f()
            },
        ),
        (
            "processID=unknown (none)",
            JobFilter {
                process_ids: vec!["nope".into()],
                ..f()
            },
        ),
        (
            "status=failed (10%)",
            JobFilter {
                statuses: vec![JobStatus::Failed],
                ..f()
            },
        ),
        (
            "status=running (20 jobs)",
            JobFilter {
                statuses: vec![JobStatus::Running],
                ..f()
            },
        ),
        (
            "status=dismissed (none)",
            JobFilter {
                statuses: vec![JobStatus::Dismissed],
                ..f()
            },
        ),
        (
            "datetime=last 2 days",
            JobFilter {
                created_from: Some(now - chrono::Duration::days(2)),
                ..f()
            },
        ),
        (
            "datetime=a year ago (none)",
            JobFilter {
                created_from: Some(now - chrono::Duration::days(400)),
                created_to: Some(now - chrono::Duration::days(380)),
                ..f()
            },
        ),
        (
            "minDuration=100",
            JobFilter {
                min_duration: Some(100.0),
                ..f()
            },
        ),
        (
            "minDuration=1000000 (none)",
            JobFilter {
                min_duration: Some(1e6),
                ..f()
            },
        ),
        (
            "maxDuration=0.01 (~0.01%)",
            JobFilter {
                max_duration: Some(0.01),
                ..f()
            },
        ),
        (
            "processID=p0&status=failed",
            JobFilter {
                process_ids: vec!["p0".into()],
                statuses: vec![JobStatus::Failed],
                ..f()
            },
        ),
        (
            "processID=p9&status=dismissed (none)",
            JobFilter {
                process_ids: vec!["p9".into()],
                statuses: vec![JobStatus::Dismissed],
                ..f()
            },
        ),
        (
            "status=failed&minDuration=119",
            JobFilter {
                statuses: vec![JobStatus::Failed],
                min_duration: Some(119.0),
                ..f()
            },
        ),
        (
            "processID=p1,p2&status=successful,failed",
            JobFilter {
                process_ids: vec!["p1".into(), "p2".into()],
                statuses: vec![JobStatus::Successful, JobStatus::Failed],
                ..f()
            },
        ),
        (
            "processID=p9&datetime=last 2 days",
            JobFilter {
                process_ids: vec!["p9".into()],
                created_from: Some(now - chrono::Duration::days(2)),
                ..f()
            },
        ),
    ];
    let mut table =
        String::from("| filter | jobs on page | p50 ms | p99 ms |\n|---|---:|---:|---:|\n");
    for (name, filter) in queries {
        let query = JobQuery {
            filter,
            after: None,
            offset: 0,
            limit: 10,
        };
        let mut page_len = 0;
        for _ in 0..WARMUP {
            page_len = store.list_jobs(&query).await.unwrap().jobs.len();
        }
        let mut times = Vec::with_capacity(REPEATS);
        for _ in 0..REPEATS {
            let started = Instant::now();
            let page = store.list_jobs(&query).await.unwrap();
            times.push(started.elapsed());
            std::hint::black_box(page);
        }
        times.sort();
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        println!("{backend}\t{name}\t{page_len}\tp50 {p50:.3} ms\tp99 {p99:.3} ms");
        table.push_str(&format!(
            "| `{name}` | {page_len} | {p50:.2} | {p99:.2} |\n"
        ));
    }
    println!("\n{backend}, {count} jobs:\n\n{table}");
}

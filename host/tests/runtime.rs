//! The sandbox against real components: the examples and the hostile
//! process. Each hostile behaviour must end with its own outcome, and the
//! same runtime must then run `hello-world` fine. `hostile-describe`: what
//! `describe()` returns is refused at load when it cannot be a description.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmproc::runtime::{
    JobLog, Limits, LoadError, MemoryReset, NoProgress, OutputProblem, OutputValue, ProcessModule,
    ProgressSink, RunOutcome, RunReport, Runtime, RuntimeConfig,
};

const HELLO: &str = env!("WASMPROC_GUEST_HELLO_WORLD");
const ECHO: &str = env!("WASMPROC_GUEST_ECHO");
const GEOMETRY: &str = env!("WASMPROC_GUEST_GEOMETRY");
const HOSTILE: &str = env!("WASMPROC_GUEST_HOSTILE");
const HOSTILE_DESCRIBE: &str = env!("WASMPROC_GUEST_HOSTILE_DESCRIBE");

/// `hostile-describe` with its variant name (after the marker in its data)
/// overwritten in place: the same trick as the HTTP tests' helper
/// (`tests/src/server.rs`), which this crate cannot depend on.
fn hostile_describe(variant: &str) -> Vec<u8> {
    const MARKER: &[u8] = b"HOSTILE-DESCRIBE-VARIANT=";
    let mut wasm = std::fs::read(HOSTILE_DESCRIBE).expect("guest built by build.rs");
    let at = wasm
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .expect("the variant marker")
        + MARKER.len();
    let slot = &mut wasm[at..at + 24];
    slot.fill(b' ');
    slot[..variant.len()].copy_from_slice(variant.as_bytes());
    wasm
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime")
}

async fn load(runtime: &Runtime, path: &str) -> ProcessModule {
    runtime
        .load(std::fs::read(path).expect("guest built by build.rs"))
        .await
        .expect("loads")
}

async fn run(runtime: &Runtime, module: &ProcessModule, inputs: &str, limits: Limits) -> RunReport {
    runtime
        .run(
            module,
            inputs,
            &limits,
            Arc::new(NoProgress),
            &CancellationToken::new(),
            JobLog::new(limits.log_bytes),
        )
        .await
}

fn outputs(report: &RunReport) -> &[wasmproc::runtime::ProcessOutput] {
    match &report.outcome {
        RunOutcome::Success { outputs } => outputs,
        other => panic!("expected success, got {other:?}; log: {}", report.log),
    }
}

/// After any hostile run, the same runtime still runs good jobs.
async fn assert_hello_still_works(runtime: &Runtime) {
    let hello = load(runtime, HELLO).await;
    let report = run(runtime, &hello, r#"{"name": "Joe"}"#, Limits::default()).await;
    assert_eq!(
        outputs(&report)[0].value,
        OutputValue::Json("Hello Joe!".into())
    );
}

/// A fresh runtime, and the report of the hostile process run on `inputs`
/// (`{"behaviour": ...}`) within `limits`.
async fn run_hostile(inputs: &str, limits: Limits) -> (Runtime, RunReport) {
    let runtime = runtime();
    let hostile = load(&runtime, HOSTILE).await;
    let report = run(&runtime, &hostile, inputs, limits).await;
    (runtime, report)
}

/// [`run_hostile`], then [`assert_hello_still_works`] on the same runtime:
/// whatever a hostile behaviour does, it is contained to its own job. The
/// report, for the behaviour's own checks.
async fn run_hostile_contained(inputs: &str, limits: Limits) -> RunReport {
    let (runtime, report) = run_hostile(inputs, limits).await;
    assert_hello_still_works(&runtime).await;
    report
}

/// The message of a run that trapped; a panic for any other outcome.
fn trap_message(report: &RunReport) -> &str {
    match &report.outcome {
        RunOutcome::Trap { message } => message,
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn hello_world_greets_like_pygeoapi() {
    let runtime = runtime();
    let hello = load(&runtime, HELLO).await;
    assert_eq!(hello.description()["id"], "hello-world");
    let report = run(
        &runtime,
        &hello,
        r#"{"name": "Joe", "message": "Welcome"}"#,
        Limits::default(),
    )
    .await;
    let out = outputs(&report);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id, "echo");
    assert_eq!(out[0].media_type, "application/json");
    assert_eq!(out[0].value, OutputValue::Json("Hello Joe! Welcome".into()));
    assert!(report.stats.fuel_consumed > 0);
    assert!(report.stats.peak_memory_bytes > 0);
}

#[tokio::test]
async fn missing_required_input_is_a_process_error() {
    let runtime = runtime();
    let hello = load(&runtime, HELLO).await;
    let report = run(&runtime, &hello, "{}", Limits::default()).await;
    match report.outcome {
        RunOutcome::ProcessError { code, message } => {
            assert_eq!(code, "invalid-input");
            assert!(message.contains("name"), "{message}");
        }
        other => panic!("expected a process error, got {other:?}"),
    }
}

#[tokio::test]
async fn echo_returns_every_input_under_its_id() {
    let runtime = runtime();
    let echo = load(&runtime, ECHO).await;
    let inputs = serde_json::json!({
        "stringInput": "hi",
        "doubleInput": 2.5,
        "arrayInput": [1, 2, 3],
        "objectInput": {"a": {"b": true}},
        "boundingBoxInput": {"bbox": [1, 2, 3, 4], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
        "binaryInput": {"value": "AAECAw==", "mediaType": "image/png"}
    });
    let report = run(&runtime, &echo, &inputs.to_string(), Limits::default()).await;
    let out = outputs(&report);
    let by_id = |id: &str| {
        out.iter()
            .find(|o| o.id == id)
            .unwrap_or_else(|| panic!("no {id}"))
    };
    for id in [
        "stringInput",
        "doubleInput",
        "arrayInput",
        "objectInput",
        "boundingBoxInput",
    ] {
        assert_eq!(
            by_id(id).value,
            OutputValue::Json(inputs[id].clone()),
            "{id}"
        );
    }
    let binary = by_id("binaryInput");
    assert_eq!(binary.value, OutputValue::Bytes(vec![0, 1, 2, 3]));
    assert_eq!(binary.media_type, "image/png");
}

#[derive(Default)]
struct RecordedProgress(Mutex<Vec<(u8, Option<String>)>>);

impl ProgressSink for RecordedProgress {
    fn progress(&self, percent: u8, message: Option<String>) {
        self.0.lock().unwrap().push((percent, message));
    }
}

#[tokio::test]
async fn echo_pause_really_sleeps_and_reports_progress() {
    let runtime = runtime();
    let echo = load(&runtime, ECHO).await;
    let progress = Arc::new(RecordedProgress::default());
    let report = runtime
        .run(
            &echo,
            r#"{"stringInput": "x", "pause": 0.3}"#,
            &Limits::default(),
            progress.clone(),
            &CancellationToken::new(),
            JobLog::new(Limits::default().log_bytes),
        )
        .await;
    outputs(&report);
    assert!(
        report.stats.duration >= Duration::from_millis(300),
        "{:?}",
        report.stats.duration
    );
    let seen = progress.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (10, Some("pausing".into())),
            (90, Some("pause over".into()))
        ]
    );
}

#[tokio::test]
async fn geometry_measures_a_polygon() {
    let runtime = runtime();
    let geometry = load(&runtime, GEOMETRY).await;
    // One degree square at the equator: ~12,308 km² and ~443.8 km around.
    let inputs =
        r#"{"geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,1],[0,0]]]}}"#;
    let report = run(&runtime, &geometry, inputs, Limits::default()).await;
    let out = outputs(&report);
    let value = |id: &str| match &out.iter().find(|o| o.id == id).unwrap().value {
        OutputValue::Json(v) => v.clone(),
        other => panic!("{other:?}"),
    };
    let area = value("area").as_f64().unwrap();
    assert!((area / 1e6 - 12_308.0).abs() < 5.0, "area {area}");
    let length = value("length").as_f64().unwrap();
    assert!((length / 1e3 - 443.77).abs() < 0.5, "length {length}");
    assert_eq!(value("bbox"), serde_json::json!([0.0, 0.0, 1.0, 1.0]));
    assert_eq!(value("centroid")["type"], "Point");
    assert_eq!(value("simplified")["type"], "Polygon");
}

#[tokio::test]
async fn infinite_loop_exhausts_fuel() {
    let limits = Limits {
        fuel: 50_000_000,
        ..Limits::default()
    };
    let report = run_hostile_contained(r#"{"behaviour": "infinite-loop"}"#, limits).await;
    assert_eq!(
        report.outcome,
        RunOutcome::FuelExhausted { limit: 50_000_000 }
    );
    assert!(report.outcome.failure_reason().unwrap().contains("fuel"));
    assert_eq!(report.stats.fuel_consumed, 50_000_000);
}

/// `behaviour` run with a 300 ms wall-clock limit (and `fuel`) ends as a
/// timeout soon after, and the runtime still runs good jobs.
async fn assert_cut_off_by_the_wall_clock(behaviour: &str, fuel: u64) {
    let limits = Limits {
        fuel,
        timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let inputs = format!(r#"{{"behaviour": "{behaviour}"}}"#);
    let report = run_hostile_contained(&inputs, limits).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Timeout {
            limit: Duration::from_millis(300)
        }
    );
    assert!(
        report
            .outcome
            .failure_reason()
            .unwrap()
            .contains("wall-clock")
    );
    // Cut off by the timer, not after the guest's loop or hour of sleep.
    assert!(
        report.stats.duration < Duration::from_secs(5),
        "{:?}",
        report.stats.duration
    );
}

#[tokio::test]
async fn infinite_loop_with_ample_fuel_hits_the_wall_clock_limit() {
    assert_cut_off_by_the_wall_clock("infinite-loop", u64::MAX / 2).await;
}

#[tokio::test]
async fn endless_sleep_is_cut_off_by_the_wall_clock_limit() {
    assert_cut_off_by_the_wall_clock("endless-sleep", Limits::default().fuel).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let limits = Limits {
        memory_bytes: 32 * 1024 * 1024,
        ..Limits::default()
    };
    let report = run_hostile_contained(r#"{"behaviour": "memory-bomb"}"#, limits).await;
    match &report.outcome {
        RunOutcome::MemoryLimit { requested, limit } => {
            assert_eq!(*limit, 32 * 1024 * 1024);
            assert!(*requested > *limit);
        }
        other => panic!("expected memory limit, got {other:?}"),
    }
    assert!(
        report
            .outcome
            .failure_reason()
            .unwrap()
            .contains("memory limit")
    );
    assert!(report.stats.peak_memory_bytes <= 32 * 1024 * 1024);
}

#[tokio::test]
async fn unbounded_recursion_traps_as_stack_overflow() {
    let report =
        run_hostile_contained(r#"{"behaviour": "deep-recursion"}"#, Limits::default()).await;
    let message = trap_message(&report);
    assert!(
        message.contains("stack overflow") || message.contains("out of bounds"),
        "{message}"
    );
}

#[tokio::test]
async fn panic_traps_and_the_message_reaches_the_log() {
    let report = run_hostile_contained(r#"{"behaviour": "panic"}"#, Limits::default()).await;
    let message = trap_message(&report);
    assert!(message.contains("panicked or aborted"), "{message}");
    assert!(
        report.log.contains("hostile process panicked on purpose"),
        "{}",
        report.log
    );
}

#[tokio::test]
async fn huge_output_hits_the_output_limit() {
    let limits = Limits {
        output_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let report =
        run_hostile_contained(r#"{"behaviour": "huge-output", "size": 8388608}"#, limits).await;
    assert_eq!(
        report.outcome,
        RunOutcome::OutputTooLarge {
            size: 8 * 1024 * 1024,
            limit: 1024 * 1024
        }
    );
}

#[tokio::test]
async fn log_flood_is_truncated_and_the_job_succeeds() {
    let limits = Limits {
        log_bytes: 16 * 1024,
        ..Limits::default()
    };
    let report = run_hostile_contained(r#"{"behaviour": "log-flood"}"#, limits).await;
    assert_eq!(
        outputs(&report)[0].value,
        OutputValue::Json("flooded".into())
    );
    assert!(
        report.log.len() < 17 * 1024,
        "log is {} bytes",
        report.log.len()
    );
    assert!(report.log.contains("bytes dropped"));
}

#[tokio::test]
async fn guest_process_error_is_reported_with_its_code() {
    let (_, report) = run_hostile(r#"{"behaviour": "process-error"}"#, Limits::default()).await;
    assert_eq!(
        report.outcome,
        RunOutcome::ProcessError {
            code: "hostile-refusal".into(),
            message: "refusing on purpose".into()
        }
    );
}

#[tokio::test]
async fn a_json_value_that_is_not_json_is_an_invalid_output_naming_it() {
    let report = run_hostile_contained(r#"{"behaviour": "invalid-json"}"#, Limits::default()).await;
    match &report.outcome {
        RunOutcome::InvalidOutput {
            output,
            problem: OutputProblem::NotJson { .. },
        } => assert_eq!(output, "result"),
        other => panic!("expected an invalid output, got {other:?}"),
    }
    assert_eq!(report.outcome.kind(), "invalid-output");
}

#[tokio::test]
async fn a_describe_that_cannot_be_a_description_is_refused_at_load() {
    let runtime = runtime();
    for (variant, expected) in [
        ("not-json", "did not return valid JSON"),
        ("not-an-object", "did not return a JSON object"),
        ("oversized", "larger than the limit of 1048576 bytes"),
    ] {
        match runtime.load(hostile_describe(variant)).await {
            Err(LoadError::Describe(reason)) => {
                assert!(reason.contains(expected), "{variant}: {reason}")
            }
            Err(other) => panic!("{variant}: wrong error {other}"),
            Ok(_) => panic!("{variant}: loaded"),
        }
    }
    let valid = runtime
        .load(hostile_describe("valid"))
        .await
        .expect("loads");
    assert_eq!(valid.description()["id"], "hostile-describe");
}

#[tokio::test]
async fn exit_is_a_trap_naming_the_exit() {
    let (_, report) = run_hostile(r#"{"behaviour": "exit"}"#, Limits::default()).await;
    let message = trap_message(&report);
    assert!(message.contains("exit"), "{message}");
}

#[tokio::test]
async fn cancelling_stops_a_running_job() {
    let runtime = runtime();
    let hostile = load(&runtime, HOSTILE).await;
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        canceller.cancel();
    });
    let limits = Limits {
        fuel: u64::MAX / 2,
        ..Limits::default()
    };
    let report = runtime
        .run(
            &hostile,
            r#"{"behaviour": "infinite-loop"}"#,
            &limits,
            Arc::new(NoProgress),
            &cancel,
            JobLog::new(limits.log_bytes),
        )
        .await;
    assert_eq!(report.outcome, RunOutcome::Cancelled);
    assert!(report.stats.duration < Duration::from_secs(5));
    assert_hello_still_works(&runtime).await;
}

#[tokio::test]
async fn hostile_jobs_fail_alone_while_good_jobs_run_beside_them() {
    let runtime = runtime();
    let hostile = load(&runtime, HOSTILE).await;
    let hello = load(&runtime, HELLO).await;
    let limits = Limits {
        fuel: 200_000_000,
        memory_bytes: 32 << 20,
        timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let mut tasks = Vec::new();
    for behaviour in ["infinite-loop", "memory-bomb", "panic", "endless-sleep"] {
        let (runtime, hostile) = (runtime.clone(), hostile.clone());
        tasks.push(tokio::spawn(async move {
            let inputs = format!(r#"{{"behaviour": "{behaviour}"}}"#);
            run(&runtime, &hostile, &inputs, limits).await.outcome
        }));
    }
    for i in 0..20 {
        let report = run(
            &runtime,
            &hello,
            &format!(r#"{{"name": "n{i}"}}"#),
            Limits::default(),
        )
        .await;
        assert_eq!(
            outputs(&report)[0].value,
            OutputValue::Json(format!("Hello n{i}!").into())
        );
    }
    for task in tasks {
        assert!(!task.await.unwrap().is_success());
    }
}

#[tokio::test]
async fn garbage_and_core_modules_are_rejected_with_a_reason() {
    let runtime = runtime();
    assert!(matches!(
        runtime.load(b"definitely not wasm".to_vec()).await,
        Err(LoadError::NotWasm)
    ));
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    assert!(matches!(
        runtime.load(core_module).await,
        Err(LoadError::CoreModule)
    ));
    let mut truncated = std::fs::read(HELLO).unwrap();
    truncated.truncate(truncated.len() / 2);
    let err = runtime.load(truncated).await.unwrap_err();
    assert!(matches!(err, LoadError::Compile(_)), "{err}");
}

#[tokio::test]
async fn artifacts_are_cached_and_tampered_ones_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        artifact_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let wasm = std::fs::read(HELLO).unwrap();
    {
        let runtime = Runtime::new(config.clone()).unwrap();
        runtime.load(wasm.clone()).await.unwrap();
    }
    let artifacts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1);
    // A fresh runtime loads from the artifact...
    let runtime = Runtime::new(config.clone()).unwrap();
    let hello = runtime.load(wasm.clone()).await.unwrap();
    let report = run(&runtime, &hello, r#"{"name": "cache"}"#, Limits::default()).await;
    assert_eq!(
        outputs(&report)[0].value,
        OutputValue::Json("Hello cache!".into())
    );
    // ...and a tampered artifact is ignored: the module is recompiled.
    let mut bytes = std::fs::read(&artifacts[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&artifacts[0], &bytes).unwrap();
    let runtime = Runtime::new(config).unwrap();
    let hello = runtime.load(wasm).await.unwrap();
    let report = run(&runtime, &hello, r#"{"name": "again"}"#, Limits::default()).await;
    assert_eq!(
        outputs(&report)[0].value,
        OutputValue::Json("Hello again!".into())
    );
}

/// No job sees what another left in memory, in either pool: the same
/// hostile module, in the small-image pool (its size is far below the
/// threshold) and in the large-image pool (threshold 0), runs `snoop`
/// again and again, sequentially and two at a time (so that slots are
/// reused while another is busy), and must find nothing each time.
/// `snoop` leaves its secret on 512 scattered pages, more runs than a
/// `PAGEMAP_SCAN` reported before our wasmtime patch and more pages than
/// the small pool copies back, and searches every page of memory for what
/// earlier jobs left, so both ways a page is reset (copied back, released)
/// are checked.
#[tokio::test]
async fn no_job_sees_what_an_earlier_job_left_in_memory_in_either_pool() {
    for (threshold, expected) in [
        (usize::MAX, MemoryReset::SmallImage),
        (0, MemoryReset::LargeImage),
    ] {
        let runtime = Runtime::new(RuntimeConfig {
            large_image_from_bytes: threshold,
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        let hostile = load(&runtime, HOSTILE).await;
        assert_eq!(hostile.memory_reset(), expected);
        let snoop = |n: usize| {
            let runtime = runtime.clone();
            let hostile = hostile.clone();
            async move {
                let inputs = format!(r#"{{"behaviour": "snoop", "secret": "job-{n}-"}}"#);
                let report = run(&runtime, &hostile, &inputs, Limits::default()).await;
                outputs(&report)[0].value.clone()
            }
        };
        for round in 0..8 {
            let (a, b) = tokio::join!(snoop(2 * round), snoop(2 * round + 1));
            for found in [a, b] {
                assert_eq!(
                    found,
                    OutputValue::Json("".into()),
                    "{expected:?}: round {round} found an earlier job's secret"
                );
            }
        }
    }
}

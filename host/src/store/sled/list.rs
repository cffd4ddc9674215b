//! `GET /jobs` on sled: which index ranges can hold matching jobs, walked
//! newest-first and merged.
//!
//! # Plan
//! 1. Bounds: every range is cut to the `datetime` interval and to before
//!    the cursor, as job keys (created ‖ id), so paging and time filters
//!    cost nothing beyond the range they select.
//! 2. Sources, each a newest-first stream of job keys:
//!    - finished statuses asked for (all three when no status filter), for
//!      one owner: the `O` range of each (owner, status) pair;
//!    - otherwise the `Q` range of each (process, status) pair, for the
//!      processes asked for or, without a process filter, every process in
//!      the index;
//!    - `accepted`/`running` asked for: the small `A` set plus the running
//!      sync jobs held in memory.
//! 3. Durations: the `D` ranges of the finished statuses asked for are
//!    counted over the requested durations up to [`DURATION_PLAN_CAP`]
//!    entries. Fewer than that: those keys replace
//!    the finished sources (a rare duration is found without touching the
//!    others). More: the duration is rare enough to check on the records
//!    of the other plan.
//! 4. The sources are merged by job key (a k-way merge, duplicates
//!    dropped: a job finishing right now can be in `A` and `Q` at once),
//!    each record is read and checked against the whole filter
//!    ([`JobFilter::matches`]), until one more than `limit` match.
//!
//! A first page therefore costs the index entries of its own range, not of
//! every job stored. What it cannot do cheaply: a combination whose
//! individual filters each match many jobs but whose intersection is empty
//! (`processID=a&minDuration=60` when `a`'s jobs are all quick but
//! thousands of other jobs are slow) walks `a`'s jobs.

use std::sync::Arc;

use super::index::{
    self, ACTIVE, BY_DURATION, BY_PROCESS_STATUS, FINISHED, JOB_KEY_LEN, concat, cursor_key,
    micros_key, owner_status_prefix, process_status_prefix,
};
use super::{SledStore, lock};
use crate::ogc::JobStatus;
use crate::store::{JobCursor, JobFilter, JobPage, JobQuery, StoreError};

/// Above this many duration-index entries in the requested range, a
/// duration filter is checked on records instead of driving the plan.
/// Counting 2,000 keys costs about a millisecond.
pub(super) const DURATION_PLAN_CAP: usize = 2000;

/// `created ‖ id`, the common tail of every index key: comparing two
/// job keys compares the jobs' places in newest-first order.
type JobKey = [u8; JOB_KEY_LEN];
/// One newest-first stream of candidate job keys (an index range read
/// backwards, or keys gathered in memory and sorted).
type Source<'a> = Box<dyn Iterator<Item = Result<JobKey, StoreError>> + 'a>;

/// The job-key interval a query may return: `lower` inclusive, `upper`
/// exclusive.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// From `datetime`'s start: its microsecond followed by a zero id, so
    /// every job created in that microsecond is in.
    lower: JobKey,
    /// The smaller of the cursor (exclusive: the page starts strictly
    /// after the last job shown) and just past `datetime`'s end.
    upper: Option<JobKey>,
}

impl Bounds {
    /// The interval of `query`'s time filter and cursor.
    fn of(query: &JobQuery) -> Self {
        let mut lower = [0u8; JOB_KEY_LEN];
        if let Some(from) = query.filter.created_from {
            lower[..8].copy_from_slice(&micros_key(from.timestamp_micros()));
        }
        // Every job created in the microsecond of `created_to` is in.
        let to = query.filter.created_to.map(|to| {
            let mut key = [0u8; JOB_KEY_LEN];
            key[..8].copy_from_slice(&micros_key(to.timestamp_micros().saturating_add(1)));
            key
        });
        let cursor = query.after.as_ref().map(cursor_key);
        let upper = match (to, cursor) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self { lower, upper }
    }

    /// Whether a job key lies inside, for keys not read from a range cut
    /// to the bounds (running sync jobs, duration candidates).
    fn contains(&self, key: &JobKey) -> bool {
        *key >= self.lower && self.upper.is_none_or(|upper| *key < upper)
    }
}

impl SledStore {
    /// A page of `GET /jobs`, computed on a blocking thread: sled's reads
    /// are synchronous, and a page can read thousands of index entries and
    /// records, which must not hold up an async executor thread serving
    /// other requests.
    pub(crate) async fn list_jobs(
        self: &Arc<Self>,
        query: &JobQuery,
    ) -> Result<JobPage, StoreError> {
        let (store, query) = (self.clone(), query.clone());
        self.blocking
            .spawn_blocking(move || store.list_blocking(&query))
            .await
            .map_err(|e| StoreError::from(sled::Error::ReportableBug(e.to_string())))?
    }

    /// The plan of the module docs: choose the sources, then merge them.
    fn list_blocking(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        let bounds = Bounds::of(query);
        let filter = &query.filter;
        let mut sources: Vec<Source<'_>> = Vec::new();
        match self.duration_candidates(filter, &bounds)? {
            Some(keys) => sources.push(Box::new(keys.into_iter().map(Ok))),
            None if filter.owner.is_some() => {
                let owner = filter.owner.as_deref().unwrap_or_default();
                for (status, byte) in FINISHED {
                    if filter.wants_status(status) {
                        sources.push(self.range(owner_status_prefix(owner, byte), &bounds));
                    }
                }
            }
            None => {
                let processes = if filter.process_ids.is_empty() {
                    self.indexed_processes()?
                } else {
                    filter.process_ids.clone()
                };
                for (status, byte) in FINISHED {
                    if !filter.wants_status(status) {
                        continue;
                    }
                    for process in &processes {
                        sources.push(self.range(process_status_prefix(process, byte), &bounds));
                    }
                }
            }
        }
        if filter.wants_status(JobStatus::Accepted) || filter.wants_status(JobStatus::Running) {
            sources.push(self.range(vec![ACTIVE], &bounds));
            let mut running_sync: Vec<JobKey> = lock(&self.running_sync)
                .values()
                .map(index::job_key)
                .filter(|key| bounds.contains(key))
                .collect();
            running_sync.sort_unstable_by(|a, b| b.cmp(a));
            sources.push(Box::new(running_sync.into_iter().map(Ok)));
        }
        self.collect_page(sources, query)
    }

    /// Every process id that has finished jobs in the `Q` index, found by
    /// seeking past each process's keys (one seek per process, whatever its
    /// number of jobs).
    pub(super) fn indexed_processes(&self) -> Result<Vec<String>, StoreError> {
        let mut processes = Vec::new();
        let mut from = vec![BY_PROCESS_STATUS];
        // Bounded: process ids are unique, and a registry holds far fewer.
        for _ in 0..1_000_000 {
            let Some(entry) = self
                .index
                .range(from.clone()..vec![BY_PROCESS_STATUS + 1])
                .next()
            else {
                break;
            };
            let key = entry?.0;
            let Some(end) = key[1..].iter().position(|b| *b == 0) else {
                break;
            };
            let process = &key[1..1 + end];
            processes.push(String::from_utf8_lossy(process).into_owned());
            // Past every key of this process: its id, then a byte above
            // the 0x00 separator.
            from = concat(&[&[BY_PROCESS_STATUS], process, &[1]]);
        }
        Ok(processes)
    }

    /// The keys of `prefix ‖ job key` within `bounds`, newest first.
    fn range(&self, prefix: Vec<u8>, bounds: &Bounds) -> Source<'_> {
        let lower = concat(&[&prefix, &bounds.lower]);
        let iter = match bounds.upper {
            Some(upper) => self.index.range(lower..concat(&[&prefix, &upper])),
            None => {
                // Everything with the prefix from `lower` on.
                match prefix_end(&prefix) {
                    Some(end) => self.index.range(lower..end),
                    None => self.index.range(lower..),
                }
            }
        };
        Box::new(iter.rev().filter_map(|entry| match entry {
            Ok((key, _)) => index::job_key_of(&key).map(Ok),
            Err(e) => Some(Err(e.into())),
        }))
    }

    /// The job keys of finished jobs in the duration range, newest first,
    /// when there are at most [`DURATION_PLAN_CAP`] of them; `None` when
    /// there is no duration filter or too many match to drive the plan.
    fn duration_candidates(
        &self,
        filter: &JobFilter,
        bounds: &Bounds,
    ) -> Result<Option<Vec<JobKey>>, StoreError> {
        if filter.min_duration.is_none() && filter.max_duration.is_none() {
            return Ok(None);
        }
        // Whole milliseconds around the requested seconds; records decide
        // the exact edges.
        let low = filter
            .min_duration
            .map_or(0, |s| (s * 1000.0).floor().max(0.0) as u64);
        let high = filter
            .max_duration
            .map(|s| (s * 1000.0).ceil().max(0.0) as u64);
        let mut keys = Vec::new();
        for (status, byte) in FINISHED {
            if !filter.wants_status(status) {
                continue;
            }
            let start = concat(&[&[BY_DURATION, byte], &low.to_be_bytes()]);
            let entries = match high.and_then(|h| h.checked_add(1)) {
                Some(end) => self
                    .index
                    .range(start..concat(&[&[BY_DURATION, byte], &end.to_be_bytes()])),
                None => self.index.range(start..vec![BY_DURATION, byte + 1]),
            };
            for entry in entries {
                if keys.len() > DURATION_PLAN_CAP {
                    return Ok(None);
                }
                if let Some(key) = index::job_key_of(&entry?.0) {
                    keys.push(key);
                }
            }
        }
        keys.retain(|key| bounds.contains(key));
        keys.sort_unstable_by(|a, b| b.cmp(a));
        keys.dedup();
        Ok(Some(keys))
    }

    /// Merge the sources newest first, read and check each job, skip
    /// `offset` matches, and return `limit` of them with the cursor of the
    /// next page when one more matches.
    fn collect_page(
        &self,
        mut sources: Vec<Source<'_>>,
        query: &JobQuery,
    ) -> Result<JobPage, StoreError> {
        let mut heads: Vec<Option<JobKey>> = Vec::with_capacity(sources.len());
        for source in &mut sources {
            heads.push(source.next().transpose()?);
        }
        let mut skipped = 0;
        let mut previous: Option<JobKey> = None;
        let mut jobs = Vec::with_capacity(query.limit.min(1000));
        while let Some((at, key)) = heads
            .iter()
            .enumerate()
            .filter_map(|(i, head)| head.map(|key| (i, key)))
            .max_by(|a, b| a.1.cmp(&b.1))
        {
            heads[at] = sources[at].next().transpose()?;
            if previous == Some(key) {
                continue;
            }
            previous = Some(key);
            let Some(id) = index::id_of(&key) else {
                continue;
            };
            let Some(job) = self.get_shown(id)? else {
                continue;
            };
            if !query.filter.matches(&job) {
                continue;
            }
            if skipped < query.offset {
                skipped += 1;
                continue;
            }
            if jobs.len() == query.limit {
                let next = jobs.last().map(JobCursor::after);
                return Ok(JobPage { jobs, next });
            }
            jobs.push(job);
        }
        Ok(JobPage { jobs, next: None })
    }
}

/// The smallest key greater than every key starting with `prefix`: drop
/// trailing `0xff` bytes and increment the last byte left; `None` when
/// the prefix is all `0xff` (nothing is greater, the range is open).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

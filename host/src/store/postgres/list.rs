//! `GET /jobs` on PostgreSQL: one statement built from the filters, shaped
//! so that the planner can walk an index newest-first and stop at the page.
//!
//! - Time range and cursor are range conditions on `(created, id)`, which
//!   every `jobs_by_*` index ends with.
//! - One process and/or one status: plain equalities, served in order by
//!   `jobs_by_status` or `jobs_by_process_status` for a finished state;
//!   the `accepted` and `running` branches can use the small partial
//!   indexes `jobs_queue` and `jobs_leases` (see `schema`), as no index
//!   spans every state. PostgreSQL 15 cannot walk
//!   `process_id = ANY(…)` in `created`
//!   order, so several processes or statuses become a `UNION ALL` of one
//!   ordered, limited branch per (process, status) pair, merged by an outer
//!   `ORDER BY` (up to [`MAX_BRANCHES`]; beyond, `= ANY` and a sort).
//! - One owner (an `execute` key's own jobs): an equality served by
//!   `jobs_by_owner_status` in each finished branch.
//! - Durations: `duration_ms` of finished jobs has its own index, which
//!   the planner picks when a duration filter is selective; running jobs'
//!   durations grow with time and are checked against `started`.

use tokio_postgres::types::ToSql;

use super::jobs::decode;
use super::{PgStore, map_error};
use crate::ogc::JobStatus;
use crate::store::{JobCursor, JobPage, JobQuery, StoreError};

/// Most `UNION ALL` branches a list statement gets; beyond, the processes
/// of a status branch become one `= ANY`.
const MAX_BRANCHES: usize = 64;

/// One bound parameter, boxed: the statement's parameters have as many
/// types as it has filters (timestamps, text, arrays, integers).
type Param = Box<dyn ToSql + Sync + Send>;

/// SQL text and its parameters, numbered as they are added.
///
/// Every value reaches PostgreSQL as a bound parameter, never spliced into
/// the SQL text: the text holds only placeholders and fixed SQL, so it
/// cannot be injected into and stays the same for the same shape of query
/// (which the per-connection statement cache relies on).
#[derive(Default)]
struct Statement {
    params: Vec<Param>,
}

impl Statement {
    /// Bind `value` as the next parameter and return its placeholder
    /// (`$1`, `$2`, …) to write into the SQL text.
    fn param(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }
}

/// The list statement for `query`, fetching one row more than the page.
///
/// One branch per (status, process) pair asked for — every status when the
/// filter names none — each an ordered, limited walk of the index of its
/// status, merged by the outer `ORDER BY`. Branches that cannot match are
/// left out (an `accepted` job has no duration).
fn build(query: &JobQuery) -> (String, Vec<Param>) {
    let filter = &query.filter;
    let mut st = Statement::default();
    let mut common = Vec::new();
    if let Some(from) = filter.created_from {
        common.push(format!("created >= {}", st.param(from)));
    }
    if let Some(to) = filter.created_to {
        common.push(format!("created <= {}", st.param(to)));
    }
    if let Some(owner) = &filter.owner {
        // Served by `jobs_by_owner_status` in each finished branch.
        common.push(format!("owner = {}", st.param(owner.clone())));
    }
    if let Some(JobCursor { created_micros, id }) = query.after {
        let created = chrono::DateTime::from_timestamp_micros(created_micros).unwrap_or_default();
        let (c, i) = (st.param(created), st.param(id));
        common.push(format!("(created, id) < ({c}, {i})"));
    }
    // Durations: finished jobs by their stored duration (whole ms: the
    // edges are exact for integers), running jobs by their start. Each
    // branch gets parameters of its own (an unused parameter has no type).
    let min = filter.min_duration;
    let max = filter.max_duration;
    let has_duration = min.is_some() || max.is_some();
    let wanted: Vec<JobStatus> = if filter.statuses.is_empty() {
        ALL_STATUSES.to_vec()
    } else {
        filter.statuses.clone()
    };
    let statuses: Vec<JobStatus> = wanted
        .into_iter()
        .filter(|s| !(has_duration && *s == JobStatus::Accepted))
        .collect();
    let processes = &filter.process_ids;
    let per_process = !processes.is_empty() && processes.len() * statuses.len() <= MAX_BRANCHES;
    let limit = st.param((query.offset + query.limit + 1) as i64);
    let mut branches = Vec::new();
    for status in &statuses {
        let mut conditions = common.clone();
        conditions.push(format!("status = {}", st.param(status.as_str().to_owned())));
        match status {
            JobStatus::Running => {
                if let Some(min) = min {
                    conditions.push(format!(
                        "started <= now() - {}::float8 * interval '1 millisecond'",
                        st.param(min * 1000.0)
                    ));
                }
                if let Some(max) = max {
                    conditions.push(format!(
                        "started >= now() - {}::float8 * interval '1 millisecond'",
                        st.param(max * 1000.0)
                    ));
                }
            }
            JobStatus::Accepted => {}
            JobStatus::Successful | JobStatus::Failed | JobStatus::Dismissed => {
                if let Some(min) = min {
                    conditions.push(format!(
                        "duration_ms >= {}::int8",
                        st.param((min * 1000.0).ceil() as i64)
                    ));
                }
                if let Some(max) = max {
                    conditions.push(format!(
                        "duration_ms <= {}::int8",
                        st.param((max * 1000.0).floor() as i64)
                    ));
                }
            }
        }
        let process_choices: Vec<Option<String>> = if per_process {
            processes
                .iter()
                .map(|p| Some(format!("process_id = {}", st.param(p.clone()))))
                .collect()
        } else if processes.is_empty() {
            vec![None]
        } else {
            vec![Some(format!(
                "process_id = ANY({})",
                st.param(processes.clone())
            ))]
        };
        for process in process_choices {
            let mut conditions = conditions.clone();
            conditions.extend(process);
            branches.push(format!(
                "(SELECT record, request, created, id FROM jobs WHERE {} \
                 ORDER BY created DESC, id DESC LIMIT {limit})",
                conditions.join(" AND ")
            ));
        }
    }
    if branches.is_empty() {
        // Only `accepted` with a duration filter: nothing can match.
        branches.push("(SELECT record, request, created, id FROM jobs WHERE FALSE)".into());
    }
    let sql = format!(
        "SELECT record, request FROM ({}) branches ORDER BY created DESC, id DESC \
         OFFSET {} LIMIT {}",
        branches.join(" UNION ALL "),
        st.param(query.offset as i64),
        st.param(query.limit as i64 + 1)
    );
    (sql, st.params)
}

/// Every state, for a filter that names none: one branch each, since the
/// indexes are per state.
const ALL_STATUSES: [JobStatus; 5] = [
    JobStatus::Accepted,
    JobStatus::Running,
    JobStatus::Successful,
    JobStatus::Failed,
    JobStatus::Dismissed,
];

impl PgStore {
    /// A page of `GET /jobs`: build the statement, run it, and cut the one
    /// extra row it fetched into the cursor of the next page (the last job
    /// shown, which the next page starts strictly after). The statement
    /// applies `offset` too, so skipped jobs are read by the database, not
    /// sent here.
    pub(crate) async fn list_jobs(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        let (sql, params) = build(query);
        self.bounded(async {
            let client = self.client().await?;
            // The statement text depends only on which filters are present
            // and how many values each has: a bounded set, cached per
            // connection.
            let statement = client.prepare_cached(&sql).await.map_err(map_error)?;
            let params: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let rows = client.query(&statement, &params).await.map_err(map_error)?;
            let mut jobs = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
            let next = if jobs.len() > query.limit {
                jobs.truncate(query.limit);
                jobs.last().map(JobCursor::after)
            } else {
                None
            };
            Ok(JobPage { jobs, next })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ogc::JobStatus;
    use crate::store::JobFilter;

    fn query(filter: JobFilter) -> JobQuery {
        JobQuery {
            filter,
            after: None,
            offset: 0,
            limit: 10,
        }
    }

    #[test]
    fn each_status_and_process_pair_is_one_ordered_branch() {
        let (sql, params) = build(&query(JobFilter {
            process_ids: vec!["a".into()],
            statuses: vec![JobStatus::Failed],
            ..JobFilter::default()
        }));
        assert!(sql.contains("status = $2 AND process_id = $3"), "{sql}");
        assert!(!sql.contains("UNION"), "{sql}");
        assert_eq!(params.len(), 5);

        let (sql, _) = build(&query(JobFilter {
            process_ids: vec!["a".into(), "b".into()],
            statuses: vec![JobStatus::Failed, JobStatus::Successful],
            ..JobFilter::default()
        }));
        assert_eq!(sql.matches("UNION ALL").count(), 3, "{sql}");

        let (sql, _) = build(&query(JobFilter::default()));
        assert_eq!(sql.matches("UNION ALL").count(), 4, "every status: {sql}");

        let (sql, _) = build(&query(JobFilter {
            min_duration: Some(1.0),
            statuses: vec![JobStatus::Accepted],
            ..JobFilter::default()
        }));
        assert!(
            sql.contains("WHERE FALSE"),
            "accepted jobs have no duration: {sql}"
        );
    }
}

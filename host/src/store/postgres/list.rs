//! `GET /jobs` on PostgreSQL: one statement built from the filters, shaped
//! so that the planner can walk an index newest-first and stop at the page.
//!
//! - Time range and cursor are range conditions on `(created, id)`, which
//!   every `jobs_by_*` index ends with.
//! - One process and/or one status: plain equalities, served by
//!   `jobs_by_process`, `jobs_by_status` or `jobs_by_process_status` in
//!   order. PostgreSQL 15 cannot walk `process_id = ANY(…)` in `created`
//!   order, so several processes or statuses become a `UNION ALL` of one
//!   ordered, limited branch per (process, status) pair, merged by an outer
//!   `ORDER BY` (up to [`MAX_BRANCHES`]; beyond, `= ANY` and a sort).
//! - Durations: `duration_ms` of finished jobs has its own index, which
//!   the planner picks when a duration filter is selective; running jobs'
//!   durations grow with time and are checked against `started`.

use tokio_postgres::types::ToSql;

use super::jobs::decode;
use super::{PgStore, map_error};
use crate::store::{JobCursor, JobPage, JobQuery, StoreError};

/// Most `UNION ALL` branches a list statement gets.
const MAX_BRANCHES: usize = 32;

type Param = Box<dyn ToSql + Sync + Send>;

/// SQL text and its parameters, numbered as they are added.
#[derive(Default)]
struct Statement {
    params: Vec<Param>,
}

impl Statement {
    fn param(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }
}

/// The list statement for `query`, fetching one row more than the page.
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
    if let Some(min) = filter.min_duration {
        let ms = (min * 1000.0).ceil() as i64;
        let (a, b) = (st.param(ms), st.param(min * 1000.0));
        common.push(format!(
            "(duration_ms >= {a} OR (status = 'running' AND started <= now() - {b}::float8 * interval '1 millisecond'))"
        ));
    }
    if let Some(max) = filter.max_duration {
        let ms = (max * 1000.0).floor() as i64;
        let (a, b) = (st.param(ms), st.param(max * 1000.0));
        common.push(format!(
            "(duration_ms <= {a} OR (status = 'running' AND started >= now() - {b}::float8 * interval '1 millisecond'))"
        ));
    }
    if let Some(JobCursor { created_micros, id }) = query.after {
        let created = chrono::DateTime::from_timestamp_micros(created_micros).unwrap_or_default();
        let (c, i) = (st.param(created), st.param(id));
        common.push(format!("(created, id) < ({c}, {i})"));
    }
    let fetch = (query.offset + query.limit + 1) as i64;
    let statuses: Vec<String> = filter
        .statuses
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    let processes = filter.process_ids.clone();
    let branches = processes.len().max(1) * statuses.len().max(1);
    let columns = "SELECT record, request, created, id FROM jobs";

    let sql = if branches > 1 && branches <= MAX_BRANCHES {
        let limit = st.param(fetch);
        let mut parts = Vec::new();
        let process_choices: Vec<Option<&String>> = if processes.is_empty() {
            vec![None]
        } else {
            processes.iter().map(Some).collect()
        };
        let status_choices: Vec<Option<&String>> = if statuses.is_empty() {
            vec![None]
        } else {
            statuses.iter().map(Some).collect()
        };
        for process in &process_choices {
            for status in &status_choices {
                let mut conditions = common.clone();
                if let Some(p) = process {
                    conditions.push(format!("process_id = {}", st.param((*p).clone())));
                }
                if let Some(s) = status {
                    conditions.push(format!("status = {}", st.param((*s).clone())));
                }
                parts.push(format!(
                    "({columns} WHERE {} ORDER BY created DESC, id DESC LIMIT {limit})",
                    where_clause(&conditions)
                ));
            }
        }
        format!(
            "SELECT record, request FROM ({}) branches ORDER BY created DESC, id DESC \
             OFFSET {} LIMIT {}",
            parts.join(" UNION ALL "),
            st.param(query.offset as i64),
            st.param(query.limit as i64 + 1)
        )
    } else {
        let mut conditions = common;
        match processes.as_slice() {
            [] => {}
            [one] => conditions.push(format!("process_id = {}", st.param(one.clone()))),
            many => conditions.push(format!("process_id = ANY({})", st.param(many.to_vec()))),
        }
        match statuses.as_slice() {
            [] => {}
            [one] => conditions.push(format!("status = {}", st.param(one.clone()))),
            many => conditions.push(format!("status = ANY({})", st.param(many.to_vec()))),
        }
        format!(
            "{columns} WHERE {} ORDER BY created DESC, id DESC OFFSET {} LIMIT {}",
            where_clause(&conditions),
            st.param(query.offset as i64),
            st.param(query.limit as i64 + 1)
        )
    };
    (sql, st.params)
}

fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        "TRUE".into()
    } else {
        conditions.join(" AND ")
    }
}

impl PgStore {
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
    fn one_value_per_filter_is_an_equality_and_several_become_ordered_branches() {
        let (sql, params) = build(&query(JobFilter {
            process_ids: vec!["a".into()],
            statuses: vec![JobStatus::Failed],
            ..JobFilter::default()
        }));
        assert!(sql.contains("process_id = $1 AND status = $2"), "{sql}");
        assert!(!sql.contains("UNION"));
        assert_eq!(params.len(), 4);

        let (sql, _) = build(&query(JobFilter {
            process_ids: vec!["a".into(), "b".into()],
            statuses: vec![JobStatus::Failed, JobStatus::Successful],
            ..JobFilter::default()
        }));
        assert_eq!(sql.matches("UNION ALL").count(), 3, "{sql}");

        let (sql, _) = build(&query(JobFilter::default()));
        assert!(
            sql.contains("WHERE TRUE ORDER BY created DESC, id DESC"),
            "{sql}"
        );
    }
}

//! Group commit for PostgreSQL: concurrent writes of one kind (job
//! submissions, job outcomes) leave in one statement and one commit.
//!
//! Each commit costs PostgreSQL a WAL flush, a context switch or two and
//! the per-statement work of parsing, planning and starting an executor —
//! more, for a hello-world job, than the rows themselves. A [`Batcher`]
//! owns one task: it waits for a request, takes every other request that
//! is already waiting (up to [`MAX_BATCH`]), runs them as one statement,
//! and answers each. No delay is added: a request that arrives while a
//! batch is being written simply joins the next one, so batches grow with
//! load and stay at one row when the server is idle.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;

/// Most requests written in one statement. It bounds the size of a batch
/// (128 rows of arrays, or 128 pipelined updates) and so how long the
/// requests queued behind one batch wait for it.
pub(super) const MAX_BATCH: usize = 128;

/// What a batch returns for each of its requests, in order.
pub(super) type BatchResult<T> = Result<Vec<T>, StoreError>;

/// A request and where its answer goes. The caller waits on the other
/// end of the oneshot; if it stopped waiting (its future was dropped), the
/// send fails and is ignored.
type Waiting<Req, Resp> = (Req, oneshot::Sender<Result<Resp, StoreError>>);

/// Sends requests to a batching task.
pub(super) struct Batcher<Req, Resp> {
    /// Unbounded, but each caller waits for its answer before it can send
    /// again, so the channel holds at most one request per caller waiting.
    /// Dropping the last sender ends the task once its queue is drained.
    requests: mpsc::UnboundedSender<Waiting<Req, Resp>>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Batcher<Req, Resp> {
    /// Start the task: `write` runs one batch and returns one answer per
    /// request, in order. The task ends when the batcher is dropped.
    ///
    /// One batch is written at a time: that is what lets requests pile up
    /// behind a batch in flight and leave together in the next one. `write`
    /// must answer each request; a request left without an answer (fewer
    /// results than requests) is told the store is closing.
    pub(super) fn start<F, Fut>(write: F) -> Self
    where
        F: Fn(Vec<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = BatchResult<Resp>> + Send,
    {
        let (requests, mut receiver) = mpsc::unbounded_channel::<Waiting<Req, Resp>>();
        let write = Arc::new(write);
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (items, answers): (Vec<Req>, Vec<_>) = batch.into_iter().unzip();
                match write(items).await {
                    Ok(results) => {
                        for (answer, result) in answers.into_iter().zip(results) {
                            let _ = answer.send(Ok(result));
                        }
                    }
                    Err(error) => {
                        let error = Shared::from(error);
                        for answer in answers {
                            let _ = answer.send(Err(error.for_one()));
                        }
                    }
                }
            }
        });
        Self { requests }
    }

    /// Queue a request and wait for its answer.
    ///
    /// Once queued, the request is written whatever happens to the caller:
    /// a caller dropped while waiting (a client that disconnected) does not
    /// take its row out of the batch, so the write may still happen.
    pub(super) async fn call(&self, request: Req) -> Result<Resp, StoreError> {
        let (answer, result) = oneshot::channel();
        self.requests
            .send((request, answer))
            .map_err(|_| closed())?;
        result.await.map_err(|_| closed())?
    }
}

/// The error of a request the task can no longer answer: the task is gone
/// (the store is being dropped) or gave no answer for it. `Unavailable`,
/// so a client is told to retry rather than shown an internal error.
fn closed() -> StoreError {
    StoreError::Unavailable {
        reason: "the store is closing".into(),
        retry_after: std::time::Duration::from_secs(1),
    }
}

/// One batch failed: the same failure for each of its requests. A
/// connection problem stays [`StoreError::Unavailable`] (503 for each
/// client); anything else is shared behind an `Arc`.
///
/// Needed because `StoreError` is not `Clone` (it carries driver errors
/// that are not), yet each waiting caller needs an error of its own.
enum Shared {
    /// The batch could not reach the database: each caller gets its own
    /// copy of the same `Unavailable`.
    Unavailable {
        reason: String,
        retry_after: std::time::Duration,
    },
    /// Any other failure, one allocation shared by every caller.
    Other(Arc<StoreError>),
}

impl From<StoreError> for Shared {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable {
                reason,
                retry_after,
            } => Shared::Unavailable {
                reason,
                retry_after,
            },
            other => Shared::Other(Arc::new(other)),
        }
    }
}

impl Shared {
    /// The error one caller gets: `Unavailable` rebuilt, anything else
    /// wrapped as `PgError::Batch` around the shared original.
    fn for_one(&self) -> StoreError {
        match self {
            Shared::Unavailable {
                reason,
                retry_after,
            } => StoreError::Unavailable {
                reason: reason.clone(),
                retry_after: *retry_after,
            },
            Shared::Other(error) => StoreError::Postgres(super::PgError::Batch(error.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_batches_and_each_gets_its_answer() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Arc::new(Batcher::start(move |items: Vec<u32>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(items.len());
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok(items.into_iter().map(|i| i * 2).collect())
            }
        }));
        let mut calls = Vec::new();
        for i in 0..200u32 {
            let batcher = batcher.clone();
            calls.push(tokio::spawn(async move { (i, batcher.call(i).await) }));
        }
        for call in calls {
            let (i, answer) = call.await.unwrap();
            assert_eq!(answer.unwrap(), i * 2);
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 200);
        assert!(sizes.len() < 200, "some requests shared a batch: {sizes:?}");
    }
}

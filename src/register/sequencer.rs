//! Group commit: appends from concurrent requests queue here and are written to the store in batches,
//! one transaction each. A caller is answered once its batch is durable.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::metrics::{OutcomeLabels, metrics};
use crate::store::{Append, Appended, RegisterStore, StoreError};

/// Most appends integrated in one transaction.
pub const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<(Appended, u64), StoreError>>;

pub(super) struct Sequencer {
    queue: mpsc::Sender<(Append, Reply)>,
}

impl Sequencer {
    /// Starts the sequencing task on the current Tokio runtime; it ends when the sequencer is dropped.
    pub(super) fn start(store: Arc<dyn RegisterStore>) -> Self {
        let (queue, jobs) = mpsc::channel(MAX_BATCH * 16);
        tokio::spawn(run(store, jobs));
        Self { queue }
    }

    /// Appends one entry with the batch it joins; returns where it landed and the tree size after the batch.
    pub(super) async fn append(&self, append: Append) -> Result<(Appended, u64), StoreError> {
        let stopped = || StoreError::Unavailable("the register's sequencer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.queue.send((append, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(store: Arc<dyn RegisterStore>, mut jobs: mpsc::Receiver<(Append, Reply)>) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        let (batch, replies): (Vec<Append>, Vec<Reply>) = waiting.drain(..).unzip();
        let started = std::time::Instant::now();
        let appended = store.append_batch(&batch).await;
        record(&appended, batch.len(), started.elapsed());
        match appended {
            Ok((placed, size)) => {
                for (reply, at) in replies.into_iter().zip(placed) {
                    let _ = reply.send(Ok((at, size)));
                }
            }
            Err(e) if batch.len() == 1 => {
                let _ = replies.into_iter().next().map(|r| r.send(Err(e)));
            }
            // One bad append must not fail its neighbours: retry each alone.
            Err(_) => {
                for (append, reply) in batch.into_iter().zip(replies) {
                    let alone = store.append_batch(std::slice::from_ref(&append)).await;
                    let _ = reply.send(alone.map(|(placed, size)| (placed[0], size)));
                }
            }
        }
    }
}

fn record(appended: &Result<(Vec<Appended>, u64), StoreError>, entries: usize, took: std::time::Duration) {
    let m = metrics();
    let outcome = if appended.is_ok() { "committed" } else { "failed" };
    m.register_batches.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc();
    m.register_batch_seconds.observe(took.as_secs_f64());
    m.register_batch_entries.observe(entries as f64);
}

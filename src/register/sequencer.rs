//! Group commit: appends from concurrent requests queue here and are written to the store in batches,
//! one transaction each. A caller is answered once its batch is durable, with the tree size and root after it.
//! The sequencer remembers the tree's right edge its last batch left, so a batch reads no node unless another
//! writer appended in between (the store checks the size inside the transaction).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::merkle::Hash;
use crate::metrics::{OutcomeLabels, metrics};
use crate::store::{Append, Appended, Frontier, RegisterStore, StoreError};

/// Most appends integrated in one transaction.
pub const MAX_BATCH: usize = 256;

/// Where an append landed, and the size and root hash of the tree after its batch.
pub(super) type Landed = (Appended, u64, Hash);
type Reply = oneshot::Sender<Result<Landed, StoreError>>;
type Job = (Append, Reply);

pub(super) struct Sequencer {
    queue: mpsc::Sender<Job>,
}

impl Sequencer {
    /// Starts the sequencing task on the current Tokio runtime; it ends when the sequencer is dropped.
    pub(super) fn start(store: Arc<dyn RegisterStore>) -> Self {
        let (queue, jobs) = mpsc::channel(MAX_BATCH * 16);
        tokio::spawn(run(store, jobs));
        Self { queue }
    }

    /// Appends one entry with the batch it joins; returns where it landed and the tree after the batch.
    pub(super) async fn append(&self, append: Append) -> Result<Landed, StoreError> {
        let stopped = || StoreError::Unavailable("the register's sequencer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.queue.send((append, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Scheduler turns the sequencer gives writers to join a group before closing it (see [`gather`]).
const GATHER_TURNS: usize = 4;

async fn run(store: Arc<dyn RegisterStore>, mut jobs: mpsc::Receiver<Job>) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    let mut last_group = 0;
    let mut known: Option<Frontier> = None;
    while jobs.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        gather(&mut jobs, &mut waiting, last_group).await;
        last_group = waiting.len();
        let (batch, replies): (Vec<Append>, Vec<Reply>) = waiting.drain(..).unzip();
        let started = std::time::Instant::now();
        let appended = store.append_batch_from(&batch, known.as_ref()).await;
        record(&appended, batch.len(), started.elapsed());
        match appended {
            Ok((placed, after)) => {
                let root = after.root();
                for (reply, at) in replies.into_iter().zip(placed) {
                    let _ = reply.send(Ok((at, after.size, root)));
                }
                known = Some(after);
            }
            Err(e) if batch.len() == 1 => {
                known = None;
                let _ = replies.into_iter().next().map(|r| r.send(Err(e)));
            }
            // One bad append must not fail its neighbours: retry each alone.
            Err(_) => {
                known = None;
                for (append, reply) in batch.into_iter().zip(replies) {
                    let alone = store.append_batch_from(std::slice::from_ref(&append), known.as_ref()).await;
                    known = alone.as_ref().ok().map(|(_, after)| after.clone());
                    let _ = reply.send(alone.map(|(placed, after)| (placed[0], after.size, after.root())));
                }
            }
        }
    }
}

/// Under load, the writers the last group answered are still on their way back with their next appends when
/// the queue is first read: without waiting for them a group of 256 is followed by one of a few, which pays
/// a whole commit. So while the group is smaller than the last one, the sequencer yields its turn (no timer,
/// no added durability wait) and takes what arrived, stopping as soon as a turn brings nothing. A lone writer
/// (last group of one) never waits.
async fn gather(jobs: &mut mpsc::Receiver<Job>, waiting: &mut Vec<Job>, last_group: usize) {
    for _ in 0..GATHER_TURNS {
        if waiting.len() >= last_group.min(MAX_BATCH) {
            return;
        }
        tokio::task::yield_now().await;
        let before = waiting.len();
        while waiting.len() < MAX_BATCH {
            let Ok(job) = jobs.try_recv() else { break };
            waiting.push(job);
        }
        if waiting.len() == before {
            return;
        }
    }
}

fn record<T>(appended: &Result<T, StoreError>, entries: usize, took: std::time::Duration) {
    let m = metrics();
    let outcome = if appended.is_ok() { "committed" } else { "failed" };
    m.register_batches.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc();
    m.register_batch_seconds.observe(took.as_secs_f64());
    m.register_batch_entries.observe(entries as f64);
}

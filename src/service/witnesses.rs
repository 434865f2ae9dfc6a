//! Witnesses (`[[log.witnesses]]`): each new signed checkpoint is sent to every configured witness with
//! the C2SP tlog-witness `add-checkpoint` request (the size the witness last cosigned, the consistency
//! proof from it, the checkpoint); a 409 answer names the witness's size and the request is sent again
//! once with a proof from there. A 200 answer's lines are kept only if they are that witness's valid
//! tlog-cosignature/v1 on this checkpoint (verified against the configured vkey); then they are stored,
//! and the checkpoint of that size is served with them appended. That note is kept per size in process
//! ([`CosignedNotes`]) so public requests do not read the cosignature table each time.
//!
//! Owns: talking to witnesses and what is stored from them. Must not touch: HTTP status codes, SQL
//! (asks `store`), the bytes of the protocol (asks `formats`). What a witness answered is never logged or
//! returned beyond its HTTP status.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Service, ServiceError};
use crate::config::Witness;
use crate::formats::checkpoint::{Checkpoint, parse_note};
use crate::formats::cosignature::verified_lines;
use crate::formats::witness::{AddCheckpoint, parse_size_answer};
use crate::oci::{EgressRules, Outbound};
use crate::store::CosignatureRecord;

/// A witness's answer: cosignature lines (one per key it holds) or a size; 16 KiB is ample.
pub const MAX_WITNESS_ANSWER_BYTES: usize = 16 * 1024;

/// The configured witnesses and the client that reaches them.
pub(super) struct WitnessClient {
    witnesses: Vec<Witness>,
    outbound: Outbound,
    /// The size each witness (by name) is known to have cosigned last.
    known: Mutex<HashMap<String, u64>>,
    cosigned: CosignedNotes,
}

/// How long a kept cosigned note is served before the stored cosignatures are read again: what another
/// replica stored shows within this; what this process stores shows at once (it drops that size's note).
const COSIGNED_FRESH: Duration = Duration::from_secs(1);

/// How many tree sizes keep a cosigned note; the smallest go first (the current size is what is asked for).
const COSIGNED_SIZES: usize = 64;

/// Cosigned notes by tree size, each with when its cosignatures were read.
#[derive(Default)]
struct CosignedNotes(Mutex<CosignedState>);

#[derive(Default)]
struct CosignedState {
    notes: BTreeMap<u64, (Instant, String)>,
    /// Counts the drops: a note read before a drop is not kept after it (it may miss the new lines).
    drops: u64,
}

impl CosignedNotes {
    fn state(&self) -> std::sync::MutexGuard<'_, CosignedState> {
        self.0.lock().expect("cosigned notes lock is never poisoned")
    }

    /// The note of `size` if its cosignatures were read less than [`COSIGNED_FRESH`] before `now`.
    fn fresh(&self, size: u64, now: Instant) -> Option<String> {
        let state = self.state();
        let (read_at, note) = state.notes.get(&size)?;
        (now.saturating_duration_since(*read_at) < COSIGNED_FRESH).then(|| note.clone())
    }

    /// What to pass to [`Self::keep`] for a note about to be read.
    fn reading(&self) -> u64 {
        self.state().drops
    }

    /// Keeps the note of `size` read at `read_at`, unless a size was dropped since [`Self::reading`].
    fn keep(&self, size: u64, note: String, read_at: Instant, reading: u64) {
        let mut state = self.state();
        if state.drops != reading {
            return;
        }
        state.notes.insert(size, (read_at, note));
        while state.notes.len() > COSIGNED_SIZES {
            state.notes.pop_first();
        }
    }

    /// New cosignatures of `size` were stored: its note is read again on the next request.
    fn drop_size(&self, size: u64) {
        let mut state = self.state();
        state.notes.remove(&size);
        state.drops += 1;
    }
}

/// What one witness did with one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessOutcome {
    /// It cosigned the tree of this size (lines stored).
    Cosigned { witness: String, size: u64 },
    /// It had already cosigned this size.
    UpToDate { witness: String, size: u64 },
    /// No cosignature: why, in notarium's words (an HTTP status at most of what the witness said).
    Failed { witness: String, reason: String },
}

impl Service {
    /// Sends checkpoints to `witnesses` under `rules` (`[registries]` egress rules), each request within
    /// `timeout`.
    pub fn with_witnesses(self, witnesses: Vec<Witness>, rules: EgressRules, timeout: Duration) -> Self {
        if witnesses.is_empty() {
            return self;
        }
        let outbound = Outbound::new(rules, timeout);
        let client = WitnessClient { witnesses, outbound, known: Mutex::default(), cosigned: CosignedNotes::default() };
        Self { witnesses: Some(std::sync::Arc::new(client)), ..self }
    }

    pub fn has_witnesses(&self) -> bool {
        self.witnesses.is_some()
    }

    /// The signed checkpoint of `size` (the current tree when `None`) with the stored witness cosignatures
    /// of that size appended: still one valid signed note. Kept per size for [`COSIGNED_FRESH`].
    pub async fn cosigned_checkpoint(&self, size: Option<u64>) -> Result<String, ServiceError> {
        let size = match size {
            Some(size) => size,
            None => self.log.size().await?,
        };
        let Some(client) = &self.witnesses else {
            return self.checkpoint(Some(size)).await;
        };
        let now = Instant::now();
        if let Some(note) = client.cosigned.fresh(size, now) {
            return Ok(note);
        }
        let reading = client.cosigned.reading();
        let note = self.read_cosigned_checkpoint(size).await?;
        client.cosigned.keep(size, note.clone(), now, reading);
        Ok(note)
    }

    async fn read_cosigned_checkpoint(&self, size: u64) -> Result<String, ServiceError> {
        let mut note = self.checkpoint(Some(size)).await?;
        let (body, _) = parse_note(&note)?;
        let root_hash = Checkpoint::parse_body(&body)?.root_hash;
        let mut seen = Vec::new();
        for record in self.store.cosignatures(size).await? {
            if record.root_hash == root_hash && !seen.contains(&record.line) {
                note.push_str(&record.line);
                seen.push(record.line);
            }
        }
        Ok(note)
    }

    /// Sends the current checkpoint to every witness that has not cosigned it yet.
    pub async fn witness_current_checkpoint(&self) -> Vec<WitnessOutcome> {
        let Some(client) = self.witnesses.clone() else {
            return Vec::new();
        };
        let checkpoint = match self.current_signed_checkpoint().await {
            Ok(Some(checkpoint)) => checkpoint,
            Ok(None) => return Vec::new(),
            Err(e) => {
                let reason = format!("no checkpoint to send: {e}");
                return client.witnesses.iter().map(|w| failed(w, reason.clone())).collect();
            }
        };
        let mut outcomes = Vec::new();
        for witness in &client.witnesses {
            outcomes.push(self.witness_one(&client, witness, &checkpoint).await);
        }
        outcomes
    }

    /// The current tree's checkpoint and its signed note; `None` for the empty tree.
    async fn current_signed_checkpoint(&self) -> Result<Option<(Checkpoint, String)>, ServiceError> {
        let size = self.log.size().await?;
        if size == 0 {
            return Ok(None);
        }
        let note = self.checkpoint(Some(size)).await?;
        let (body, _) = parse_note(&note)?;
        Ok(Some((Checkpoint::parse_body(&body)?, note)))
    }

    async fn known_size(&self, client: &WitnessClient, witness: &Witness) -> Result<u64, ServiceError> {
        let known = client.known.lock().expect("witness sizes lock is never poisoned").get(&witness.key.name).copied();
        match known {
            Some(size) => Ok(size),
            None => Ok(self.store.latest_cosigned_size(&witness.key.name).await?.unwrap_or(0)),
        }
    }

    async fn witness_one(
        &self,
        client: &WitnessClient,
        witness: &Witness,
        (checkpoint, note): &(Checkpoint, String),
    ) -> WitnessOutcome {
        let name = witness.key.name.clone();
        let mut old = match self.known_size(client, witness).await {
            Ok(old) if old == checkpoint.size => return WitnessOutcome::UpToDate { witness: name, size: old },
            Ok(old) => old,
            Err(e) => return failed(witness, e.to_string()),
        };
        // At most one retry: after a 409 the request goes again from the size the witness named.
        for attempt in 0..2 {
            match self.add_checkpoint(client, witness, checkpoint, note, old).await {
                Ok(Answer::Cosigned(lines)) => {
                    return match self.keep_cosignatures(witness, checkpoint, lines).await {
                        Ok(()) => {
                            client.remember(witness, checkpoint.size);
                            client.cosigned.drop_size(checkpoint.size);
                            WitnessOutcome::Cosigned { witness: name, size: checkpoint.size }
                        }
                        Err(e) => failed(witness, e.to_string()),
                    };
                }
                Ok(Answer::Conflict(size)) if attempt == 0 && size <= checkpoint.size => old = size,
                Ok(Answer::Conflict(size)) => {
                    let reason = format!("the witness holds size {size}, not a prefix this log can prove from");
                    return failed(witness, reason);
                }
                Err(reason) => return failed(witness, reason),
            }
        }
        failed(witness, "the witness answered 409 twice".into())
    }

    async fn add_checkpoint(
        &self,
        client: &WitnessClient,
        witness: &Witness,
        checkpoint: &Checkpoint,
        note: &str,
        old_size: u64,
    ) -> Result<Answer, String> {
        let proof = if old_size == 0 {
            Vec::new()
        } else {
            self.log.consistency_proof(old_size, checkpoint.size).await.map_err(|e| e.to_string())?
        };
        let request = AddCheckpoint { old_size, proof, note: note.to_owned() };
        let url = add_checkpoint_url(&witness.url);
        let (status, answer) = client
            .outbound
            .post_answer(&url, "text/plain", request.to_body().into_bytes(), MAX_WITNESS_ANSWER_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        let answer =
            String::from_utf8(answer).map_err(|_| format!("HTTP {status} with an answer that is not UTF-8"))?;
        match status {
            200 => {
                let lines = verified_lines(&checkpoint.body(), &answer, &witness.key)
                    .map_err(|_| "HTTP 200 without a valid cosignature of the witness's key".to_owned())?;
                if lines.is_empty() {
                    return Err("HTTP 200 without a cosignature of the witness's key".into());
                }
                Ok(Answer::Cosigned(lines))
            }
            409 => parse_size_answer(&answer)
                .map(Answer::Conflict)
                .ok_or_else(|| "HTTP 409 without a tree size".to_owned()),
            other => Err(format!("HTTP {other}")),
        }
    }

    async fn keep_cosignatures(
        &self,
        witness: &Witness,
        checkpoint: &Checkpoint,
        lines: Vec<(u64, String)>,
    ) -> Result<(), ServiceError> {
        let received_at = super::now_rfc3339();
        let records: Vec<_> = lines
            .into_iter()
            .map(|(timestamp, line)| CosignatureRecord {
                tree_size: checkpoint.size,
                root_hash: checkpoint.root_hash,
                witness: witness.key.name.clone(),
                vkey: witness.key.vkey(),
                cosigned_at: i64::try_from(timestamp).unwrap_or(i64::MAX),
                line,
                received_at: received_at.clone(),
            })
            .collect();
        Ok(self.store.add_cosignatures(&records).await?)
    }
}

impl WitnessClient {
    fn remember(&self, witness: &Witness, size: u64) {
        self.known.lock().expect("witness sizes lock is never poisoned").insert(witness.key.name.clone(), size);
    }
}

enum Answer {
    Cosigned(Vec<(u64, String)>),
    Conflict(u64),
}

fn failed(witness: &Witness, reason: String) -> WitnessOutcome {
    WitnessOutcome::Failed { witness: witness.key.name.clone(), reason }
}

/// `<submission prefix>/add-checkpoint`.
fn add_checkpoint_url(prefix: &reqwest::Url) -> reqwest::Url {
    let mut url = prefix.clone();
    let path = format!("{}/add-checkpoint", prefix.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_checkpoint_goes_under_the_submission_prefix() {
        for (prefix, expected) in [
            ("http://w.example", "http://w.example/add-checkpoint"),
            ("http://w.example/", "http://w.example/add-checkpoint"),
            ("https://w.example/witness/", "https://w.example/witness/add-checkpoint"),
            ("https://w.example/witness", "https://w.example/witness/add-checkpoint"),
        ] {
            assert_eq!(add_checkpoint_url(&reqwest::Url::parse(prefix).unwrap()).as_str(), expected);
        }
    }

    #[test]
    fn a_kept_note_is_served_while_fresh_and_read_again_after_new_cosignatures_or_when_stale() {
        let notes = CosignedNotes::default();
        let t0 = Instant::now();
        assert_eq!(notes.fresh(5, t0), None);
        notes.keep(5, "log line\n".into(), t0, notes.reading());
        assert_eq!(notes.fresh(5, t0 + COSIGNED_FRESH / 2).as_deref(), Some("log line\n"));
        assert_eq!(notes.fresh(5, t0 + COSIGNED_FRESH), None, "stale: another replica may have stored lines");
        notes.drop_size(5);
        assert_eq!(notes.fresh(5, t0), None, "new cosignatures of the size drop its note");
    }

    #[test]
    fn a_note_read_before_new_cosignatures_were_stored_is_not_kept() {
        let notes = CosignedNotes::default();
        let t0 = Instant::now();
        let reading = notes.reading();
        notes.drop_size(5);
        notes.keep(5, "without the new line\n".into(), t0, reading);
        assert_eq!(notes.fresh(5, t0), None);
    }

    #[test]
    fn only_the_largest_sizes_are_kept() {
        let notes = CosignedNotes::default();
        let t0 = Instant::now();
        for size in 1..=(COSIGNED_SIZES as u64 + 1) {
            notes.keep(size, format!("{size}\n"), t0, notes.reading());
        }
        assert_eq!(notes.fresh(1, t0), None);
        assert_eq!(notes.fresh(COSIGNED_SIZES as u64 + 1, t0).as_deref(), Some("65\n"));
        assert_eq!(notes.state().notes.len(), COSIGNED_SIZES);
    }
}

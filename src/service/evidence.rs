//! The evidence pack of a period (docs/FORMATS.md §23), streamed as a zip archive page by page: the period's
//! entries as an export with their proofs, the key and policy entries they rest on (with their proofs, however
//! old), the signed checkpoints at both ends and the consistency proof between them, and the signed bytes of
//! every signature the period records; with witnesses, the end checkpoint as they cosigned it; and the human
//! report (`report::render_html`).
//!
//! Owns: what goes into a pack and in which order. Must not touch: the member formats (`register::evidence`),
//! HTTP.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use super::export::{EXPORT_PAGE, Period};
use super::{Service, ServiceError};
use crate::formats::digest::hex_lower;
use crate::register::evidence::{
    CONTEXT, END_CHECKPOINT, ENTRIES, MANIFEST, Manifest, PACK_TYPE, PAYLOADS, REPORT_HTML, START_CHECKPOINT,
    WITNESSES, is_context, payload_line, signed_digest,
};
use crate::register::export::{Consistency, entry_line, header_line};
use crate::report::{ReportInput, render_html};

/// The largest period the pack renders a report for (the report holds every entry in memory); a larger
/// one gets none, and its manifest lists no `report.html`.
pub(super) const REPORT_MAX_ENTRIES: u64 = 200_000;

/// What a written pack holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceWritten {
    pub tree_size: u64,
    pub first_index: u64,
    pub count: u64,
    pub context_entries: usize,
    pub payloads: usize,
    pub signatures_without_payload: u64,
}

/// The period's index range and what it needs from outside it, from one pass over the register.
struct Survey {
    first: u64,
    last: u64,
    context: Vec<u64>,
}

/// How many archive bytes are gathered before they are sent on.
const SEND_BYTES: usize = 1 << 20;

/// What the archive writer writes into, emptied into the channel as it fills.
#[derive(Clone, Default)]
struct Spool(Arc<Mutex<Vec<u8>>>);

impl Spool {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn pack_error(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Evidence(e.to_string())
}

impl Service {
    /// Streams the evidence pack of `period` (a zip archive) into `chunks`, a page of entries at a time;
    /// with `since`, the export proves the tree extends the one of that size. Fails early, before any
    /// chunk, on a bad `since`; a receiver that goes away stops it.
    pub async fn stream_evidence(
        &self,
        period: Period,
        since: Option<u64>,
        chunks: &tokio::sync::mpsc::Sender<Vec<u8>>,
    ) -> Result<EvidenceWritten, ServiceError> {
        let spool = Spool::default();
        let send = async |spool: &Spool| {
            let bytes = spool.take();
            if bytes.is_empty() {
                return Ok(());
            }
            chunks.send(bytes).await.map_err(|_| ServiceError::Evidence("the receiver went away".into()))
        };
        if self.has_witnesses() {
            // Witnesses cosign the tree the pack is proved against when they can; the pack carries what they gave.
            self.witness_current_checkpoint().await;
        }
        let tree_size = self.log.size().await?;
        let survey = self.survey(period, tree_size).await?;
        let checkpoint = self.checkpoint(Some(tree_size)).await?;
        let start_checkpoint = self.checkpoint(Some(survey.first)).await?;
        let start_consistency = match survey.first {
            0 => Vec::new(),
            first => self.log.consistency_proof(first, tree_size).await?,
        };
        let consistency = match since {
            Some(from_size) => {
                Some(Consistency { from_size, hashes: self.log.consistency_proof(from_size, tree_size).await? })
            }
            None => None,
        };
        let mut zip = ZipWriter::new_stream(spool.clone());
        let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let count = survey.last - survey.first;
        zip.start_file(ENTRIES, options).map_err(pack_error)?;
        zip.write_all(header_line(&checkpoint, tree_size, survey.first, count, consistency.as_ref()).as_bytes())
            .map_err(pack_error)?;
        let mut digests = BTreeSet::new();
        let mut reported = Vec::new();
        for start in (survey.first..survey.last).step_by(EXPORT_PAGE as usize) {
            let end = (start + EXPORT_PAGE).min(survey.last);
            let entries = self.log.entries(start, end).await?;
            let proofs = self.log.inclusion_proofs(start..end, tree_size).await?;
            for ((index, bytes), proof) in entries.iter().zip(&proofs) {
                zip.write_all(entry_line(*index, bytes, proof).as_bytes()).map_err(pack_error)?;
                if spool.len() >= SEND_BYTES {
                    send(&spool).await?;
                }
                let entry: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
                digests.extend(signed_digest(&entry).map(str::to_owned));
                if count <= REPORT_MAX_ENTRIES {
                    reported.push((*index, entry));
                }
            }
        }
        zip.start_file(CONTEXT, options).map_err(pack_error)?;
        for index in &survey.context {
            let entry = self.log.entries(*index, index + 1).await?;
            let proof = self.log.inclusion_proof(*index, tree_size).await?;
            for (index, bytes) in entry {
                zip.write_all(entry_line(index, &bytes, &proof).as_bytes()).map_err(pack_error)?;
            }
        }
        zip.start_file(PAYLOADS, options).map_err(pack_error)?;
        let wanted: Vec<String> = digests.into_iter().collect();
        let mut payloads = 0;
        for chunk in wanted.chunks(EXPORT_PAGE as usize) {
            for (digest, bytes) in self.store.signed_payloads(chunk).await? {
                zip.write_all(payload_line(&digest, &bytes).as_bytes()).map_err(pack_error)?;
                payloads += 1;
            }
            send(&spool).await?;
        }
        let written = EvidenceWritten {
            tree_size,
            first_index: survey.first,
            count,
            context_entries: survey.context.len(),
            payloads,
            signatures_without_payload: (wanted.len() - payloads) as u64,
        };
        let mut members = vec![ENTRIES, CONTEXT, PAYLOADS, END_CHECKPOINT, START_CHECKPOINT];
        let mut texts = vec![(END_CHECKPOINT, checkpoint.clone()), (START_CHECKPOINT, start_checkpoint)];
        if self.has_witnesses() {
            texts.push((WITNESSES, self.cosigned_checkpoint(Some(tree_size)).await?));
            members.push(WITNESSES);
        }
        let format = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
        let (from, to) = (period.from.and_then(format), period.to.and_then(format));
        if count <= REPORT_MAX_ENTRIES {
            let input = ReportInput {
                origin: self.register.origin.clone(),
                from: from.clone().unwrap_or_else(|| "the beginning".into()),
                to: to.clone().unwrap_or_else(|| format!("tree size {tree_size}")),
                tree_size,
                entries: reported,
            };
            texts.push((REPORT_HTML, render_html(&input)));
            members.push(REPORT_HTML);
        }
        for (name, text) in &texts {
            zip.start_file(*name, options).map_err(pack_error)?;
            zip.write_all(text.as_bytes()).map_err(pack_error)?;
        }
        members.push(MANIFEST);
        let manifest = Manifest {
            kind: PACK_TYPE.to_owned(),
            version: 1,
            origin: self.register.origin.clone(),
            from,
            to,
            tree_size,
            first_index: survey.first,
            count,
            start_size: survey.first,
            start_consistency: start_consistency.iter().map(|h| hex_lower(h)).collect(),
            members: [ENTRIES, CONTEXT, PAYLOADS, END_CHECKPOINT, START_CHECKPOINT, MANIFEST]
                .map(str::to_owned)
                .to_vec(),
            signatures_without_payload: written.signatures_without_payload,
        };
        zip.start_file(MANIFEST, options).map_err(pack_error)?;
        let manifest = serde_json::to_vec_pretty(&manifest).map_err(pack_error)?;
        zip.write_all(&manifest).map_err(pack_error)?;
        zip.finish().map_err(pack_error)?;
        send(&spool).await?;
        Ok(written)
    }

    /// One pass over the tree of `size`: the period's range and the key and policy entries before its end.
    async fn survey(&self, period: Period, size: u64) -> Result<Survey, ServiceError> {
        let (mut first, mut last, mut context) = (None, size, Vec::new());
        for start in (0..size).step_by(EXPORT_PAGE as usize) {
            for (index, bytes) in self.log.entries(start, (start + EXPORT_PAGE).min(size)).await? {
                let entry: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                if is_context(&entry) {
                    context.push(index);
                }
                if period.contains(&entry) {
                    first.get_or_insert(index);
                    last = index + 1;
                }
            }
        }
        let first = first.unwrap_or(size);
        // Key and policy entries after the period are not needed: the period's entries cannot use them.
        context.retain(|&index| index < last.max(first));
        Ok(Survey { first, last: last.max(first), context })
    }
}

//! The auditor's export of a period, produced page by page so a million entries never sit in memory.

use super::{Service, ServiceError};
use crate::register::export::{Consistency, ExportFormat, csv_header, csv_row, header_line, push_entry_line};

/// A period of the register to export: entries whose `time` falls in `[from, to)`; open ends allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Period {
    pub from: Option<time::OffsetDateTime>,
    pub to: Option<time::OffsetDateTime>,
}

impl Period {
    pub(super) fn contains(&self, entry: &serde_json::Value) -> bool {
        let Some(at) = entry["time"]
            .as_str()
            .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        else {
            return false;
        };
        self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at < to)
    }

    fn is_everything(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

/// Entries read and proved per page.
pub const EXPORT_PAGE: u64 = 1000;

/// What an export covers: entries `[first, last)` of the tree of `tree_size`, and its opening text.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    pub format: ExportFormat,
    pub tree_size: u64,
    pub first: u64,
    pub last: u64,
    pub opening: String,
}

impl ExportPlan {
    pub fn count(&self) -> u64 {
        self.last - self.first
    }

    /// The page starts, in order.
    pub fn pages(&self) -> impl Iterator<Item = u64> + use<> {
        (self.first..self.last).step_by(EXPORT_PAGE as usize)
    }
}

impl Service {
    /// Fixes the tree size and the range of `period`, signs the checkpoint and, with `since`, proves that
    /// the tree an auditor saw at that size is a prefix of this one.
    pub async fn export_plan(
        &self,
        period: Period,
        format: ExportFormat,
        since: Option<u64>,
    ) -> Result<ExportPlan, ServiceError> {
        let tree_size = self.log.size().await?;
        let (first, last) = self.period_range(period, tree_size).await?;
        let opening = match format {
            ExportFormat::Csv => csv_header(),
            ExportFormat::Jsonl => {
                let checkpoint = self.checkpoint(Some(tree_size)).await?;
                let consistency = match since {
                    Some(from_size) => {
                        Some(Consistency { from_size, hashes: self.log.consistency_proof(from_size, tree_size).await? })
                    }
                    None => None,
                };
                header_line(&checkpoint, tree_size, first, last - first, consistency.as_ref())
            }
        };
        Ok(ExportPlan { format, tree_size, first, last, opening })
    }

    /// The lines of the page that starts at `start`.
    pub async fn export_page(&self, plan: &ExportPlan, start: u64) -> Result<String, ServiceError> {
        let end = (start + EXPORT_PAGE).min(plan.last);
        let entries = self.log.entries(start, end).await?;
        let mut out = String::new();
        if plan.format == ExportFormat::Csv {
            entries.iter().for_each(|(index, bytes)| out.push_str(&csv_row(*index, bytes)));
            return Ok(out);
        }
        let proofs = self.log.inclusion_proofs(start..end, plan.tree_size).await?;
        out.reserve(entries.iter().map(|(_, bytes)| bytes.len() + 1500).sum());
        for ((index, bytes), proof) in entries.iter().zip(&proofs) {
            push_entry_line(&mut out, *index, bytes, proof);
        }
        Ok(out)
    }

    /// The smallest index range holding every entry of `period` (everything for an open period).
    async fn period_range(&self, period: Period, size: u64) -> Result<(u64, u64), ServiceError> {
        if period.is_everything() {
            return Ok((0, size));
        }
        let (mut first, mut last) = (None, size);
        for start in (0..size).step_by(EXPORT_PAGE as usize) {
            for (index, bytes) in self.log.entries(start, (start + EXPORT_PAGE).min(size)).await? {
                let entry: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                if period.contains(&entry) {
                    first.get_or_insert(index);
                    last = index + 1;
                }
            }
        }
        Ok(first.map_or((size, size), |first| (first, last)))
    }
}

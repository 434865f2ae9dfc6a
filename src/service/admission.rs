//! Deploy-time verification for the admission webhooks: every image a workload would run goes through the
//! verify engine; the validating webhook records each decision in the register (unless the request is a dry
//! run) and, with `[verdicts] attach`, attaches its verdict, the mutating one records nothing (the validating call that follows records the decision).
//!
//! Must not touch: the AdmissionReview format, where a kind keeps its pod spec or the patch
//! (`formats::admission`), or HTTP.

use std::future::Future;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::{Decision, Service, ServiceError};
use crate::formats::admission::{ImageUse, ImageVerdict};
use crate::policy::{Mode, PolicySet};

/// At most this many images of one admission request are decided at once, so a pod spec with many
/// containers cannot open unbounded registry reads; verdicts keep the request's order.
const ADMISSION_CONCURRENCY: usize = 8;

impl Service {
    /// A verdict per image, decided under the policies in force (a tag resolved to its digest). An image
    /// that cannot be decided (no registry host, not in its registry, registry unreachable) is denied with
    /// the reason: the webhook fails closed. A dry run records nothing.
    pub async fn admit(
        &self,
        images: &[ImageUse],
        dry_run: bool,
        actor: &str,
        addr: Option<&str>,
    ) -> Result<Vec<ImageVerdict>, ServiceError> {
        let policies = self.policies();
        bounded(images.iter().map(|image| self.admit_image(image, &policies, dry_run, actor, addr))).try_collect().await
    }

    /// A verdict per image to pin, decided as [`admit`](Self::admit) decides it, recording nothing: the
    /// digest of an allowed verdict is the one the mutating webhook pins.
    pub async fn decide_pins(&self, images: &[ImageUse]) -> Vec<ImageVerdict> {
        let policies = self.policies();
        bounded(images.iter().map(|image| self.pin_image(image, &policies))).collect().await
    }

    async fn pin_image(&self, image: &ImageUse, policies: &Arc<PolicySet>) -> ImageVerdict {
        match self.verify(&image.image, policies.clone(), None).await {
            Ok(decision) => verdict(image, decision),
            Err(undecidable) => undecidable_verdict(image, &undecidable),
        }
    }

    async fn admit_image(
        &self,
        image: &ImageUse,
        policies: &Arc<PolicySet>,
        dry_run: bool,
        actor: &str,
        addr: Option<&str>,
    ) -> Result<ImageVerdict, ServiceError> {
        let decision = match self.verify(&image.image, policies.clone(), None).await {
            Ok(decision) => decision,
            Err(undecidable) => return Ok(undecidable_verdict(image, &undecidable)),
        };
        if !dry_run {
            let recorded = self.record_decision_entry(&image.image, &decision, actor, addr).await?;
            self.emit_verdict(&image.image, &decision, &recorded, false, actor).await?;
        }
        Ok(verdict(image, decision))
    }
}

/// The outputs of `decisions`, at most [`ADMISSION_CONCURRENCY`] running at once, in their order. The futures
/// are collected before the stream is made: a stream over the iterator, which holds the closure that makes
/// them, is not `Send` for every lifetime, and axum's handlers must be.
fn bounded<F: Future>(decisions: impl IntoIterator<Item = F>) -> impl futures_util::Stream<Item = F::Output> {
    let decisions: Vec<F> = decisions.into_iter().collect();
    stream::iter(decisions).buffered(ADMISSION_CONCURRENCY)
}

fn verdict(image: &ImageUse, decision: Decision) -> ImageVerdict {
    // Only a `warn` policy's reasons become warnings; an allowance by the default needs none.
    let warned = decision.mode == Some(Mode::Warn);
    let reasons = if decision.allowed && !warned { Vec::new() } else { decision.reasons };
    ImageVerdict { image: image.clone(), digest: Some(decision.digest), allowed: decision.allowed, reasons }
}

fn undecidable_verdict(image: &ImageUse, undecidable: &ServiceError) -> ImageVerdict {
    tracing::warn!(image = %image.image, error = %undecidable, "admission: image cannot be decided");
    ImageVerdict { image: image.clone(), digest: None, allowed: false, reasons: vec![undecidable.to_string()] }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn images_are_decided_at_most_the_bound_at_once_in_their_order() {
        let images: Vec<ImageUse> = (0..3 * ADMISSION_CONCURRENCY)
            .map(|n| ImageUse { image: format!("reg.example/app:{n}"), containers: Vec::new(), pointers: Vec::new() })
            .collect();
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let decided: Vec<String> = bounded(images.iter().map(|image| {
            let (running, most) = (&running, &most);
            async move {
                most.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                // Stay in flight across a few polls so that every decision the bound lets start overlaps.
                let n: usize = image.image.rsplit(':').next().unwrap().parse().unwrap();
                for _ in 0..(n * 7) % 5 + 3 {
                    tokio::task::yield_now().await;
                }
                running.fetch_sub(1, Ordering::SeqCst);
                image.image.clone()
            }
        }))
        .collect()
        .await;
        assert_eq!(most.load(Ordering::SeqCst), ADMISSION_CONCURRENCY);
        assert_eq!(decided, images.iter().map(|i| i.image.clone()).collect::<Vec<_>>());
    }
}

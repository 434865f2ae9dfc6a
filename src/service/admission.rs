//! Deploy-time verification for the admission webhook: every image a workload would run goes through the
//! verify engine and, unless the request is a dry run, into the register as a `verify` entry.
//!
//! Must not touch: the AdmissionReview format or where a kind keeps its pod spec (`formats::admission`), or HTTP.

use std::sync::Arc;

use futures_util::future::join_all;

use super::{Service, ServiceError};
use crate::formats::admission::{ImageUse, ImageVerdict};
use crate::policy::{Mode, PolicySet};

impl Service {
    /// A verdict per image, decided concurrently under the policies in force (a tag resolved to its
    /// digest). An image that cannot be decided (no registry host, not in its registry, registry
    /// unreachable) is denied with the reason: the webhook fails closed. A dry run records nothing.
    pub async fn admit(
        &self,
        images: &[ImageUse],
        dry_run: bool,
        actor: &str,
        addr: Option<&str>,
    ) -> Result<Vec<ImageVerdict>, ServiceError> {
        let policies = self.policies();
        join_all(images.iter().map(|image| self.admit_image(image, &policies, dry_run, actor, addr)))
            .await
            .into_iter()
            .collect()
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
            Err(undecidable) => {
                tracing::warn!(image = %image.image, error = %undecidable, "admission: image denied, it cannot be decided");
                let reasons = vec![undecidable.to_string()];
                return Ok(ImageVerdict { image: image.clone(), digest: None, allowed: false, reasons });
            }
        };
        if !dry_run {
            self.record_decision(&image.image, &decision, actor, addr).await?;
        }
        // Only a `warn` policy's reasons become warnings; an allowance by the default needs none.
        let warned = decision.mode == Some(Mode::Warn);
        let reasons = if decision.allowed && !warned { Vec::new() } else { decision.reasons };
        Ok(ImageVerdict {
            image: image.clone(),
            digest: Some(decision.digest.to_string()),
            allowed: decision.allowed,
            reasons,
        })
    }
}

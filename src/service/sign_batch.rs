//! Batch signing: several images in one request (a multi-service release, a multi-arch set). The key,
//! annotations and formats are checked once; every image is parsed, de-duplicated and resolved before
//! anything is written (a reference that cannot be read, a duplicate, an index without `recursive` or a
//! registry the egress rules refuse stops the whole batch, naming its index); then the images are signed
//! concurrently, at most [`SIGNS_AT_ONCE`] at a time, and every confirmation is appended in one register
//! transaction, so the batch has one tree size and one checkpoint. An image that fails after that
//! (unreachable, missing, a refused write) fails alone.
//!
//! Owns: the batch's order of operations. Must not touch: how one digest is signed (`sign.rs`).

use futures_util::stream::{self, StreamExt as _};

use super::record::Staged;
use super::sign::HeadStart;
use super::{LogPosition, Service, ServiceError, SignOutcome, SignRequest, Targets};
use crate::formats::ImageReference;
use crate::oci::OciError;

/// How many images of a batch are signed at once: each keeps several registry requests in flight.
const SIGNS_AT_ONCE: usize = 8;

/// Why a whole batch failed: refused before anything was written, with the index of the image at fault, or
/// (`index` `None`) its register entries could not be appended.
#[derive(Debug)]
pub struct BatchRefused {
    pub index: Option<usize>,
    pub error: ServiceError,
}

/// One image's result in a batch: its outcome (with `log` set once the batch's entries are durable) or why
/// it failed.
pub type ImageSigned = Result<SignOutcome, ServiceError>;

impl Service {
    /// The most images one batch may name (`[sign] max_batch`).
    pub fn max_sign_batch(&self) -> usize {
        self.layouts.max_batch.unwrap_or(crate::config::DEFAULT_MAX_BATCH)
    }

    /// Signs every image of `images` with `request`'s key, formats, annotations and `recursive` (its own
    /// `image` is ignored). Returns one result per image, in order; `Err` only when the batch was refused
    /// before anything was written, or when the register could not take the batch's entries (the rows
    /// then stay pending for reconciliation).
    pub async fn sign_batch(&self, request: &SignRequest, images: &[String]) -> Result<Vec<ImageSigned>, BatchRefused> {
        if images.is_empty() || images.len() > self.max_sign_batch() {
            let error = ServiceError::BatchSize { count: images.len(), limit: self.max_sign_batch() };
            return Err(BatchRefused { index: None, error });
        }
        self.check_sign_request(request).map_err(|error| BatchRefused { index: None, error })?;
        let parsed = parse_distinct(images)?;
        let resolved = self.resolve_all(&parsed, request.recursive).await?;
        self.check_manifest_count(&resolved)?;
        // Collected first: a lazy map's closure in the stream's type trips the Send check of the handler.
        let signs: Vec<_> =
            parsed.iter().zip(resolved).map(|(image, targets)| self.sign_resolved(request, image, targets)).collect();
        let staged: Vec<(ImageSigned, Vec<Staged>)> = stream::iter(signs).buffered(SIGNS_AT_ONCE).collect().await;
        self.commit(staged).await.map_err(|error| BatchRefused { index: None, error })
    }

    /// Refuses a batch whose images and platforms make more manifests than `[sign] max_batch_manifests`,
    /// before anything is written.
    fn check_manifest_count(&self, resolved: &[Result<Targets, ServiceError>]) -> Result<(), BatchRefused> {
        let count = resolved.iter().map(|targets| targets.as_ref().map_or(1, Targets::count)).sum();
        let limit = self.layouts.max_batch_manifests.unwrap_or(crate::config::DEFAULT_MAX_BATCH_MANIFESTS);
        match count > limit {
            true => Err(BatchRefused { index: None, error: ServiceError::BatchManifests { count, limit } }),
            false => Ok(()),
        }
    }

    /// Each image's targets, read concurrently. A refusal by the egress rules or an index without
    /// `recursive` (or too large) refuses the batch; any other failure is that image's alone.
    async fn resolve_all(
        &self,
        images: &[ImageReference],
        recursive: bool,
    ) -> Result<Vec<Result<Targets, ServiceError>>, BatchRefused> {
        let reads: Vec<_> = images.iter().map(|image| self.targets(image, recursive)).collect();
        let mut resolved: Vec<Result<Targets, ServiceError>> =
            stream::iter(reads).buffered(SIGNS_AT_ONCE).collect().await;
        let refusing = |error: &ServiceError| {
            matches!(
                error,
                ServiceError::Registry(OciError::NotAllowed { .. })
                    | ServiceError::IndexNeedsRecursive { .. }
                    | ServiceError::IndexTooLarge { .. }
            )
        };
        if let Some(index) = resolved.iter().position(|r| r.as_ref().is_err_and(refusing))
            && let Err(error) = resolved.swap_remove(index)
        {
            return Err(BatchRefused { index: Some(index), error });
        }
        Ok(resolved)
    }

    async fn sign_resolved(
        &self,
        request: &SignRequest,
        image: &ImageReference,
        targets: Result<Targets, ServiceError>,
    ) -> (ImageSigned, Vec<Staged>) {
        match targets {
            Ok(targets) => self.sign_targets(request, image, targets).await,
            Err(error) => (Err(error), Vec::new()),
        }
    }

    /// Signs an image's manifest and, for an index, each platform manifest, without appending. What was
    /// staged before a failure is returned with it, so its entries are still appended.
    async fn sign_targets(
        &self,
        request: &SignRequest,
        image: &ImageReference,
        targets: Targets,
    ) -> (ImageSigned, Vec<Staged>) {
        let mut staged = Vec::new();
        let mut signed = match self.sign_digest_staged(request, image, &targets.top, HeadStart::default()).await {
            Ok((outcome, entry)) => {
                staged.extend(entry);
                Ok(outcome)
            }
            Err(error) => return (Err(error), staged),
        };
        let platforms = super::each_platform(&targets.platforms, |platform| {
            self.sign_digest_staged(request, image, platform, HeadStart::default())
        })
        .await;
        for platform in platforms {
            match (platform, &mut signed) {
                (Ok((outcome, entry)), Ok(top)) => {
                    staged.extend(entry);
                    top.platforms.push(outcome);
                }
                (Ok((_, entry)), Err(_)) => staged.extend(entry),
                (Err(error), Ok(_)) => signed = Err(error),
                (Err(_), Err(_)) => {}
            }
        }
        (signed, staged)
    }

    /// Appends every staged confirmation in one transaction and writes each entry's position into its
    /// outcome (an image's own entry, then its platforms', in the order they were staged).
    async fn commit(&self, staged: Vec<(ImageSigned, Vec<Staged>)>) -> Result<Vec<ImageSigned>, ServiceError> {
        let appends: Vec<_> = staged.iter().flat_map(|(_, s)| s.iter().map(|s| s.append.clone())).collect();
        let (placed, tree_size) = match appends.is_empty() {
            true => (Vec::new(), 0),
            false => self.log.append_all(&appends).await?,
        };
        let mut positions = placed.into_iter().map(|a| LogPosition { index: a.index, tree_size });
        let mut results = Vec::with_capacity(staged.len());
        for (signed, entries) in staged {
            let mut mine: std::collections::HashMap<i64, LogPosition> =
                entries.iter().filter_map(|s| positions.next().map(|position| (s.id, position))).collect();
            results.push(signed.map(|mut outcome| {
                place(&mut outcome, &mut mine);
                outcome
            }));
        }
        Ok(results)
    }
}

/// Sets `outcome`'s (and its platforms') register position from the row id its entry confirms.
fn place(outcome: &mut SignOutcome, positions: &mut std::collections::HashMap<i64, LogPosition>) {
    outcome.log = outcome.record_id.and_then(|id| positions.remove(&id));
    outcome.platforms.iter_mut().for_each(|platform| place(platform, positions));
}

/// Every reference parsed; a reference that cannot be read, or that names the same image as an earlier
/// one once both are canonical, refuses the batch.
fn parse_distinct(images: &[String]) -> Result<Vec<ImageReference>, BatchRefused> {
    let mut seen = std::collections::HashMap::new();
    let mut parsed = Vec::with_capacity(images.len());
    for (index, text) in images.iter().enumerate() {
        let image = ImageReference::parse(text).map_err(|e| BatchRefused { index: Some(index), error: e.into() })?;
        if let Some(first) = seen.insert(image.to_string(), index) {
            let error = ServiceError::DuplicateImage { image: image.to_string(), first };
            return Err(BatchRefused { index: Some(index), error });
        }
        parsed.push(image);
    }
    Ok(parsed)
}

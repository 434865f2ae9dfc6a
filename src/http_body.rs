//! Bodies of HTTP answers from remotes (registries, token services, identity providers), read within a cap:
//! the announced length is checked before anything is read, and reading stops as soon as the bytes received
//! pass the cap, so a 1 GiB or endless body costs at most the cap in memory.
//!
//! Owns: reading a `reqwest::Response` body chunk by chunk. Must not touch: what the body means or who sent
//! it (callers name both in their own errors).

use reqwest::Response;

/// Why a capped read gave up.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("the body could not be read: {0}")]
    Transport(#[from] reqwest::Error),
}

/// The whole body of `response`, or [`BodyError::TooLarge`] as soon as its announced length or the bytes
/// received pass `limit`.
pub async fn read_capped(mut response: Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let announced = response.content_length().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if announced.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = Vec::with_capacity(announced.unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most the first `limit` bytes of the body of `response` (an error answer, read only to be logged or
/// parsed for its code): the rest is never read, and a failure to read ends the prefix early.
pub async fn read_prefix(mut response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == limit {
            break;
        }
    }
    body
}

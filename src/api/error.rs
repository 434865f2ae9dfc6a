//! Every error the API returns, as RFC 9457 `application/problem+json`. This file is the one place that
//! maps domain errors to HTTP status codes.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::formats::FormatError;
use crate::formats::admission::AdmissionError;
use crate::keys::KeyError;
use crate::oci::OciError;
use crate::register::RegisterError;
use crate::service::ServiceError;

const PROBLEM_BASE: &str = "https://notarium.dev/problems/";

/// A problem document: a stable `type` slug, a short title and a detail naming what is wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ApiError {
    /// A URI naming the kind of problem, e.g. `https://notarium.dev/problems/missing-registry-host`.
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = String)]
    pub title: &'static str,
    /// The HTTP status code of the answer.
    pub status: u16,
    /// What exactly is wrong, for a human.
    pub detail: String,
    /// On `registry-error` and `registry-refused-input`: the HTTP status the registry answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_status: Option<u16>,
    /// On `registry-refused-input` (and `registry-error` when it gave one): the registry's (first) error code,
    /// one of the distribution specification's (`NAME_INVALID`, `MANIFEST_UNKNOWN`, …); never its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_code: Option<String>,
    /// Response headers the status needs (`WWW-Authenticate` on 401, `Retry-After` on 429).
    #[serde(skip)]
    headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    fn new(status: StatusCode, slug: &str, title: &'static str, detail: impl Into<String>) -> Self {
        let kind = format!("{PROBLEM_BASE}{slug}");
        let (registry_status, registry_code) = (None, None);
        Self {
            kind,
            title,
            status: status.as_u16(),
            detail: detail.into(),
            registry_status,
            registry_code,
            headers: Vec::new(),
        }
    }

    fn database_unavailable(detail: String) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "database-unavailable", "The database is unavailable", detail)
    }

    pub fn reserved_annotation(key: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "reserved-annotation",
            "Annotation is reserved for the server",
            format!("annotation {key:?}: notarium writes the caller's CI identity under this prefix itself"),
        )
    }

    pub fn no_such_token(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "no-such-token", "No such token in force", format!("no token {id} in force"))
    }

    /// The open API was asked under a name that is not loopback (DNS rebinding).
    pub fn host_not_loopback() -> Self {
        Self::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host-not-loopback",
            "The open API answers loopback host names only",
            "while no API token exists (and no OIDC issuer is configured), the Host must be localhost, a 127.x \
             address or [::1]: create a token with `notarium token create` to serve other names",
        )
    }

    /// A query parameter that parsed but does not say what it must (`detail` names it).
    /// A sign request that names neither `image` nor `images`, or both, or an empty `images`.
    pub fn image_or_images(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "image-or-images", "Name one image, or a list of images", detail)
    }

    /// A request body without a field it needs (as a missing field of the JSON schema is answered).
    pub fn missing_field(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "Request body is missing a field or has one of the wrong type",
            detail,
        )
    }

    /// This problem about the image at `index` of a batch, its detail saying which one.
    pub fn at_batch_index(mut self, index: usize, image: &str) -> Self {
        self.detail = format!("images[{index}] ({image}): {}", self.detail);
        self
    }

    /// The HTTP status of this problem.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// A tile path that is malformed or names a tile the current tree does not have (C2SP tlog-tiles).
    pub fn no_such_tile() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "no-such-tile",
            "No such tile",
            "tiles are tile/<L>/<N>[.p/<W>] and tile/entries/<N>[.p/<W>] within the current tree",
        )
    }

    pub fn invalid_dry_run(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-dry-run", "The dry-run request is malformed or too large", detail)
    }

    pub fn invalid_query(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-query", "Query parameters are missing or malformed", detail)
    }

    /// `GET /v1/log/entries` asked for a range that is reversed, longer than `max_entries` or past i64.
    pub fn invalid_range(max_entries: u64) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-range",
            "Entry range is invalid",
            format!("end must be at least start, at most start + {max_entries} and at most {}", i64::MAX),
        )
    }

    /// `POST /v1/events/registry` while no registry secret is configured.
    pub fn registry_events_off() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "registry-events-off",
            "Registry events are not configured",
            "set [events] registry_secret_env or registry_secret_file",
        )
    }

    /// A registry event delivery without the configured secret.
    pub fn registry_events_unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "registry-events-unauthorized",
            "Missing or wrong registry secret",
            "send Authorization: Bearer <the configured secret>",
        )
    }

    /// A registry event delivery whose body is not a distribution event envelope.
    pub fn malformed_events(error: &serde_json::Error) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed-events", "Not a distribution event envelope", error.to_string())
    }

    /// A request body that ended before its declared length (the client hung up while sending it).
    pub fn unreadable_body(error: &axum::Error) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unreadable-body", "Request body could not be read", error.to_string())
    }

    /// `/readyz` once shutdown has begun.
    pub fn shutting_down() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting-down", "Shutting down", "notarium is shutting down")
    }

    /// `/readyz` with failing dependencies: named (`failures`) only when `details` (an admin asked).
    pub fn not_ready(failures: &[String], details: bool) -> Self {
        let detail = if details {
            failures.join("; ")
        } else {
            "not ready (a request with an admin token is told which dependency failed)".into()
        };
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "A dependency is not ready", detail)
    }

    fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(status = self.status, kind = %self.kind, detail = %self.detail, "request failed");
        }
        let mut response =
            (status, [(header::CONTENT_TYPE, super::openapi::PROBLEM_JSON)], Json(&self)).into_response();
        for (name, value) in &self.headers {
            if let Ok(value) = header::HeaderValue::from_str(value) {
                response.headers_mut().insert(name.clone(), value);
            }
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let detail = error.to_string();
        let unauthorized = |slug, title| {
            Self::new(StatusCode::UNAUTHORIZED, slug, title, detail.clone())
                .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"notarium\"")
        };
        match error {
            AuthError::Missing => unauthorized("unauthenticated", "Authentication required"),
            AuthError::Invalid(_) => unauthorized("invalid-token", "The bearer token was not accepted"),
            AuthError::Forbidden { .. } => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", "The caller may not do this", detail)
            }
            AuthError::RateLimited(seconds) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests", detail)
                    .with_header(header::RETRY_AFTER, seconds.to_string())
            }
            AuthError::InvalidSpec(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-token-request",
                "The token request is invalid",
                detail,
            ),
            AuthError::InvalidLifetime(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid-token-lifetime",
                "The token lifetime is malformed or past the limit",
                detail,
            ),
            AuthError::ProviderUnavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "identity-provider-unavailable",
                "The identity provider's keys cannot be read",
                detail,
            ),
            AuthError::Store(_) => Self::database_unavailable(detail),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let detail = rejection.body_text();
        match rejection {
            JsonRejection::JsonSyntaxError(_) => {
                Self::new(StatusCode::BAD_REQUEST, "malformed-json", "Request body is not valid JSON", detail)
            }
            JsonRejection::JsonDataError(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                "Request body is missing a field or has one of the wrong type",
                detail,
            ),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Request body must be application/json",
                detail,
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", "Request body is too large", detail)
            }
            other => Self::new(other.status(), "unreadable-body", "Request body could not be read", detail),
        }
    }
}

impl From<crate::policy::PolicyError> for ApiError {
    fn from(error: crate::policy::PolicyError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-policy", "A candidate policy file is invalid", error.to_string())
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let detail = error.to_string();
        match error {
            ServiceError::Reference(e) => format_problem(&e, detail),
            ServiceError::Key(e) => key_problem(&e, detail),
            ServiceError::ImageNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "image-not-found", "Image not found in its registry", detail)
            }
            ServiceError::Registry(e) => registry_problem(&e, detail),
            ServiceError::Store(_) => Self::database_unavailable(detail),
            ServiceError::Formats(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid-formats",
                "No requested signature format can be written",
                detail,
            ),
            ServiceError::Annotations(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid-annotations", "Annotations are invalid", detail)
            }
            ServiceError::Register(RegisterError::OutOfRange { .. }) => {
                Self::new(StatusCode::BAD_REQUEST, "outside-the-log", "The log has no such entry or size", detail)
            }
            ServiceError::Register(RegisterError::Store(_)) => Self::database_unavailable(detail),
            ServiceError::IndexNeedsRecursive { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "index-needs-recursive",
                "The image is an index: recursive is required",
                detail,
            ),
            ServiceError::BatchSize { .. } | ServiceError::BatchManifests { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "batch-too-large", "Too many images in one request", detail)
            }
            ServiceError::DuplicateImage { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "duplicate-image", "An image is listed twice", detail)
            }
            ServiceError::IndexTooLarge { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "index-too-large",
                "The image index lists more manifests than a recursive request covers",
                detail,
            ),
            ServiceError::Predicate(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-predicate", "The predicate is invalid", detail)
            }
            ServiceError::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "The result would be too large", detail)
            }
            ServiceError::UnknownPolicy(_) => {
                Self::new(StatusCode::NOT_FOUND, "unknown-policy", "No such policy is loaded", detail)
            }
            ServiceError::CheckpointKey(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "checkpoint-key-unavailable",
                "Checkpoints cannot be signed",
                detail,
            ),
            ServiceError::NoCa => Self::new(StatusCode::NOT_FOUND, "no-ca", "No [ca] is configured", detail),
            ServiceError::NoVerdicts => {
                Self::new(StatusCode::BAD_REQUEST, "no-verdicts", "No [verdicts] is configured", detail)
            }
            ServiceError::Evidence(_) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "evidence-unavailable",
                "The evidence pack could not be written",
                detail,
            ),
            ServiceError::Timestamp { .. } => Self::new(
                StatusCode::BAD_GATEWAY,
                "timestamp-unavailable",
                "The timestamp authority gave no usable timestamp",
                detail,
            ),
            ServiceError::InvalidRevocation(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid-revocation", "The revocation is invalid", detail)
            }
            ServiceError::AlreadyRevoked(_) => {
                Self::new(StatusCode::CONFLICT, "key-already-revoked", "The key version is already revoked", detail)
            }
            ServiceError::Certificate(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "certificate-unavailable",
                "The key's certificate chain is unusable",
                detail,
            ),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::invalid_query(rejection.body_text())
    }
}

impl From<AdmissionError> for ApiError {
    fn from(error: AdmissionError) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-admission-review",
            "Request body is not an admission.k8s.io/v1 AdmissionReview this webhook can answer",
            error.to_string(),
        )
    }
}

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        ServiceError::from(error).into()
    }
}

impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> Self {
        let detail = error.to_string();
        key_problem(&error, detail)
    }
}

fn format_problem(error: &FormatError, detail: String) -> ApiError {
    let (slug, title) = match error {
        FormatError::MissingRegistryHost(_) => ("missing-registry-host", "Image reference has no registry host"),
        FormatError::MalformedDigest(_) => ("malformed-digest", "Digest is malformed"),
        FormatError::MalformedReference { .. } | FormatError::MalformedRegistryHost { .. } => {
            ("malformed-reference", "Image reference is malformed")
        }
        FormatError::MalformedDocument { .. } | FormatError::TooManySignatures { .. } => {
            ("malformed-document", "Document is malformed")
        }
    };
    ApiError::new(StatusCode::BAD_REQUEST, slug, title, detail)
}

fn key_problem(error: &KeyError, detail: String) -> ApiError {
    match error {
        KeyError::UnknownKey(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown-key", "No such key", detail),
        KeyError::UnknownVersion { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown-key-version", "No such key version", detail)
        }
        KeyError::MalformedReference(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed-key-reference", "Key reference is malformed", detail)
        }
        KeyError::Reserved(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "reserved-key",
            "The key is reserved for the register's checkpoints",
            detail,
        ),
        KeyError::ReservedForCa(_) => {
            ApiError::new(StatusCode::FORBIDDEN, "reserved-key", "The key is reserved for issuing certificates", detail)
        }
        KeyError::Backend { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "key-backend-unavailable",
            "The key backend could not sign",
            detail,
        ),
        KeyError::Load { .. } | KeyError::UnsupportedPublicKey(_) | KeyError::BadSignature => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "key-error", "A configured key is unusable", detail)
        }
    }
}

/// Registry error codes that say the caller's input (name, reference, digest) is what the registry refused.
const INPUT_CODES: [&str; 8] = [
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "MANIFEST_UNKNOWN",
    "MANIFEST_INVALID",
    "DIGEST_INVALID",
    "TAG_INVALID",
    "BLOB_UNKNOWN",
    "SIZE_INVALID",
];

/// The problem for a registry failure. `detail` is the error's message, which never carries what the
/// registry answered; the whole error (its low-level reason included) goes to the log.
fn registry_problem(error: &OciError, detail: String) -> ApiError {
    tracing::warn!(error = ?error, "registry failure");
    let (status, slug, title) = match error {
        OciError::NotAllowed { .. } => (
            StatusCode::FORBIDDEN,
            "registry-not-allowed",
            "The egress rules do not let notarium contact this registry",
        ),
        OciError::Unreachable { .. } | OciError::TlsFailed { .. } => {
            (StatusCode::BAD_GATEWAY, "registry-unreachable", "Registry could not be reached")
        }
        OciError::Unauthorized { .. } => {
            (StatusCode::BAD_GATEWAY, "registry-denied", "Registry denied notarium access")
        }
        OciError::Contended { .. } => {
            (StatusCode::CONFLICT, "registry-contended", "Another writer kept changing the signature tag")
        }
        OciError::LockTimeout { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "tag-lock-timeout", "Another writer held the tag's lock too long")
        }
        OciError::LockUnavailable { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "database-unavailable", "The database is unavailable")
        }
        OciError::Refused { status, codes, .. }
            if (400..500).contains(status) && codes.first().is_some_and(|c| INPUT_CODES.contains(&c.as_str())) =>
        {
            let code = &codes[0];
            let status = if code.ends_with("_UNKNOWN") { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
            (status, "registry-refused-input", "Registry refused the name, reference or content")
        }
        OciError::Refused { .. }
        | OciError::DigestMismatch { .. }
        | OciError::BlobNotFound { .. }
        | OciError::TooLarge { .. }
        | OciError::Format(_) => (StatusCode::BAD_GATEWAY, "registry-error", "Registry answered with an error"),
    };
    let mut problem = ApiError::new(status, slug, title, detail);
    if let OciError::Refused { status, codes, .. } = error {
        (problem.registry_status, problem.registry_code) = (Some(*status), codes.first().cloned());
    }
    problem
}

pub(super) async fn no_such_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no-such-route", "No such route", "see GET /v1/openapi.json for the API")
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed on this route",
        "see GET /v1/openapi.json for the API",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_lock_wait_that_ran_out_is_a_503_naming_the_tag_and_a_lock_database_failure_a_503_too() {
        let (registry, tag) = ("r.example".to_owned(), "sha256-ab.sig".to_owned());
        let timeout = OciError::LockTimeout { registry: registry.clone(), tag: tag.clone(), waited_ms: 30_000 };
        let problem = ApiError::from(ServiceError::Registry(timeout));
        assert_eq!((problem.status, problem.kind.as_str()), (503, "https://notarium.dev/problems/tag-lock-timeout"));
        assert_eq!(
            problem.detail,
            "timed out after 30000 ms waiting for the lock on tag sha256-ab.sig in r.example; another writer holds it"
        );
        let unavailable = OciError::LockUnavailable { registry, tag, reason: "connection refused".into() };
        let problem = ApiError::from(ServiceError::Registry(unavailable));
        assert_eq!(
            (problem.status, problem.kind.as_str()),
            (503, "https://notarium.dev/problems/database-unavailable")
        );
        assert!(!problem.detail.contains("connection refused"), "the database's words stay in the log");
    }
}

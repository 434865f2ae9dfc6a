//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of the API, generated from the handlers' `#[utoipa::path]`
//! annotations and the request and response types as `mod.rs` registers them. Every operation gets the
//! problem+json answers (`4XX`, `5XX`) here, so no handler can forget them.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::ApiError;
use super::auth::Public;
use crate::auth::Role;

/// The media type of every error answer (RFC 9457).
pub(super) const PROBLEM_JSON: &str = "application/problem+json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "notarium",
        description = "Container-image signing and attestation whose keys never leave their backend. Errors are \
                       RFC 9457 application/problem+json documents with a stable `type`."
    ),
    components(schemas(ApiError)),
    modifiers(&BearerSchemes)
)]
pub(super) struct ApiDoc;

/// Adds the shared `Problem` response and points every operation's `4XX` and `5XX` at it; run on the
/// document with every route in it.
pub(super) fn add_problem_responses(mut document: Document) -> Document {
    let problem = ResponseBuilder::new()
        .description("An RFC 9457 problem document naming what is wrong")
        .content(PROBLEM_JSON, ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build())
        .build();
    let components = document.components.get_or_insert_with(Default::default);
    components.responses.insert("Problem".into(), problem.into());
    for item in document.paths.paths.values_mut() {
        for operation in operations(item) {
            for range in ["4XX", "5XX"] {
                operation.responses.responses.entry(range.into()).or_insert_with(problem_ref);
            }
        }
    }
    document
}

fn problem_ref() -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    Ref::new("#/components/responses/Problem").into()
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head]
        .into_iter()
        .filter_map(Option::as_mut)
}

/// The bearer schemes: the secret CNCF distribution presents on `POST /v1/events/registry`, and callers' tokens.
struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        components.add_security_scheme("registry_secret", SecurityScheme::Http(bearer));
        for role in [Role::Signer, Role::Verifier, Role::Auditor, Role::Admin] {
            let caller = HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(format!(
                    "A caller with the {} role: an API token (`ntk_…`, from `notarium token create`) or a CI OIDC ID \
                     token its claim rules map to the role. Not needed while the API is open (loopback, no token made \
                     yet, no OIDC issuer), except for token administration.",
                    role.as_str()
                )))
                .build();
            components.add_security_scheme(role.as_str(), SecurityScheme::Http(caller));
        }
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
pub(super) async fn document(_public: Public) -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let json = DOCUMENT.get_or_init(|| super::openapi().to_json().expect("the OpenAPI document serializes"));
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}

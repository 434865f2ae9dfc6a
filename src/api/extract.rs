//! The request extractors every handler takes for its body and query: `AppJson<T>` and `AppQuery<T>`,
//! axum's `Json` and `Query` whose rejection is the API's problem (built in `error.rs`).
//!
//! Owns: turning a body or query string into a request type. Must not touch: what a problem says.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;

/// A JSON request body (`Content-Type: application/json`) deserialized into `T`.
pub(super) struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// A query string deserialized into `T`.
pub(super) struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use axum::routing::{get, post};
    use serde::Deserialize;
    use tower::ServiceExt as _;

    use super::*;

    #[derive(Deserialize)]
    struct Named {
        name: String,
    }

    /// The status and problem type a request to a route taking `AppJson` and `AppQuery` gets.
    async fn problem_for(request: Request<Body>) -> (StatusCode, String) {
        let app = Router::new()
            .route("/body", post(|AppJson(named): AppJson<Named>| async { named.name }))
            .route("/query", get(|AppQuery(named): AppQuery<Named>| async { named.name }));
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        (status, problem["type"].as_str().unwrap_or_default().rsplit('/').next().unwrap().to_owned())
    }

    fn post_json(content_type: &str, body: &'static str) -> Request<Body> {
        Request::post("/body").header(header::CONTENT_TYPE, content_type).body(Body::from(body)).unwrap()
    }

    #[tokio::test]
    async fn body_rejections_are_the_apis_problems() {
        let malformed = problem_for(post_json("application/json", "{")).await;
        assert_eq!(malformed, (StatusCode::BAD_REQUEST, "malformed-json".into()));
        let missing_field = problem_for(post_json("application/json", "{}")).await;
        assert_eq!(missing_field, (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request".into()));
        let not_json = problem_for(post_json("text/plain", "{}")).await;
        assert_eq!(not_json, (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type".into()));
    }

    #[tokio::test]
    async fn query_rejections_are_the_apis_problems() {
        let missing = problem_for(Request::get("/query").body(Body::empty()).unwrap()).await;
        assert_eq!(missing, (StatusCode::BAD_REQUEST, "invalid-query".into()));
        let given = Request::get("/query?name=x").body(Body::empty()).unwrap();
        assert_eq!(problem_for(given).await.0, StatusCode::OK);
    }
}

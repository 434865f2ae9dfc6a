//! Kubernetes `admission.k8s.io/v1` AdmissionReview: the request as the API server sends it, the images a
//! workload would run (containers, init containers and ephemeral containers of the pod spec at the path its
//! kind keeps it), and the review sent back.
//!
//! Owns: the AdmissionReview shapes and where each workload kind holds its pod spec. Must not touch: how an
//! image is decided (`service::verify`), the network, or HTTP status codes (`api`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// The Kubernetes Status code a denial carries inside the review (the HTTP answer itself is 200).
const DENIED_CODE: u16 = 403;

/// The container lists of a pod spec, in the order kubelet starts them.
const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// Why a body is not an AdmissionReview this webhook can answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdmissionError {
    #[error("apiVersion must be {API_VERSION:?} (list v1 in the webhook's admissionReviewVersions), not {0:?}")]
    ApiVersion(String),
    #[error("kind must be {KIND:?}, not {0:?}")]
    Kind(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("request is malformed: {0}")]
    Request(String),
    #[error("request.object{path} is {reason}")]
    Object { path: String, reason: &'static str },
}

/// A group and kind, e.g. `apps` / `Deployment` (the core group is `""`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub kind: String,
}

/// The part of `request` this webhook reads; every other field is ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub sub_resource: Option<String>,
    pub operation: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub object: Option<Value>,
    /// A dry run must have no side effects (the webhook is registered with `sideEffects: NoneOnDryRun`).
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReview {
    api_version: String,
    kind: String,
    request: Option<Value>,
}

impl AdmissionRequest {
    /// The request of an `admission.k8s.io/v1` AdmissionReview.
    pub fn from_review(review: Value) -> Result<Self, AdmissionError> {
        let raw: RawReview = serde_json::from_value(review).map_err(|e| AdmissionError::Request(e.to_string()))?;
        if raw.api_version != API_VERSION {
            return Err(AdmissionError::ApiVersion(raw.api_version));
        }
        if raw.kind != KIND {
            return Err(AdmissionError::Kind(raw.kind));
        }
        let request = raw.request.ok_or(AdmissionError::NoRequest)?;
        serde_json::from_value(request).map_err(|e| AdmissionError::Request(e.to_string()))
    }

    /// Every image the object would run, each with the containers that use it; empty when there is nothing
    /// to check: an operation other than CREATE or UPDATE, a kind that runs no pods, or a subresource
    /// other than `ephemeralcontainers` (a status update or a scale cannot change an image).
    pub fn images(&self) -> Result<Vec<ImageUse>, AdmissionError> {
        let Some(path) = pod_spec_path(&self.kind) else { return Ok(Vec::new()) };
        let checked_operation = matches!(self.operation.as_str(), "CREATE" | "UPDATE");
        let checked_subresource =
            self.sub_resource.as_deref().is_none_or(|s| s.is_empty() || s == "ephemeralcontainers");
        if !checked_operation || !checked_subresource {
            return Ok(Vec::new());
        }
        let object = self.object.as_ref().ok_or(AdmissionError::Object { path: String::new(), reason: "missing" })?;
        pod_spec_images(pod_spec(object, path)?, &format!(".{}", path.join(".")))
    }
}

/// Where a workload kind keeps the spec of the pods it runs; `None` for kinds that run no pods.
fn pod_spec_path(kind: &GroupVersionKind) -> Option<&'static [&'static str]> {
    match (kind.group.as_str(), kind.kind.as_str()) {
        ("", "Pod") => Some(&["spec"]),
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => Some(&["spec", "template", "spec"]),
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

fn pod_spec<'a>(object: &'a Value, path: &[&str]) -> Result<&'a Value, AdmissionError> {
    let mut at = object;
    for (depth, field) in path.iter().enumerate() {
        at = at.get(field).filter(|v| v.is_object()).ok_or_else(|| AdmissionError::Object {
            path: format!(".{}", path[..=depth].join(".")),
            reason: "missing or not an object",
        })?;
    }
    Ok(at)
}

/// An image and the containers (`containers/app`, `initContainers/migrate`, …) that run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    pub image: String,
    pub containers: Vec<String>,
}

/// The distinct images of a pod spec in first-use order. A container without an image is skipped: a
/// workload template may leave it to be filled in later, and the pod it becomes is checked then.
fn pod_spec_images(spec: &Value, spec_path: &str) -> Result<Vec<ImageUse>, AdmissionError> {
    let mut uses: Vec<ImageUse> = Vec::new();
    for list in CONTAINER_LISTS {
        for (index, container) in containers(spec, &format!("{spec_path}.{list}"), list)?.iter().enumerate() {
            let name = container.get("name").and_then(Value::as_str).map_or_else(|| index.to_string(), str::to_owned);
            let image = match container.get("image") {
                None | Some(Value::Null) => continue,
                Some(Value::String(image)) if image.is_empty() => continue,
                Some(Value::String(image)) => image,
                Some(_) => {
                    let path = format!("{spec_path}.{list}[{index}].image");
                    return Err(AdmissionError::Object { path, reason: "not a string" });
                }
            };
            let label = format!("{list}/{name}");
            match uses.iter_mut().find(|u| &u.image == image) {
                Some(found) => found.containers.push(label),
                None => uses.push(ImageUse { image: image.clone(), containers: vec![label] }),
            }
        }
    }
    Ok(uses)
}

fn containers<'a>(spec: &'a Value, path: &str, list: &str) -> Result<&'a [Value], AdmissionError> {
    match spec.get(list) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(AdmissionError::Object { path: path.to_owned(), reason: "not a list" }),
    }
}

/// What the policies said about one image of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVerdict {
    pub image: ImageUse,
    /// The digest the image was decided at, when it could be resolved.
    pub digest: Option<String>,
    pub allowed: bool,
    /// Why it was denied; for an allowed image, why a `warn` policy would have denied it (a warning).
    pub reasons: Vec<String>,
}

impl ImageVerdict {
    /// `IMAGE (containers/app, initContainers/init; sha256:…)`: how messages name the image.
    fn describe(&self) -> String {
        let mut context = self.image.containers.join(", ");
        if let Some(digest) = &self.digest {
            context = format!("{context}; {digest}");
        }
        format!("{} ({context})", self.image.image)
    }
}

/// The AdmissionReview sent back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: AdmissionResponse,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A Kubernetes `meta/v1` Status, as much of it as a denial needs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Status {
    pub code: u16,
    pub message: String,
}

impl AdmissionReview {
    /// The answer to the request `uid`: denied when any image is, with one line per denied image and why;
    /// allowed images with reasons (a `warn` policy that would have denied) become warnings.
    pub fn answer(uid: &str, verdicts: &[ImageVerdict]) -> Self {
        let denied: Vec<&ImageVerdict> = verdicts.iter().filter(|v| !v.allowed).collect();
        let status = (!denied.is_empty()).then(|| Status { code: DENIED_CODE, message: denial_message(&denied) });
        let warnings = verdicts
            .iter()
            .filter(|v| v.allowed && !v.reasons.is_empty())
            .map(|v| format!("{}: would be denied: {}", v.describe(), v.reasons.join("; ")))
            .collect();
        let response = AdmissionResponse { uid: uid.to_owned(), allowed: denied.is_empty(), status, warnings };
        Self { api_version: API_VERSION, kind: KIND, response }
    }
}

fn denial_message(denied: &[&ImageVerdict]) -> String {
    let count = if denied.len() == 1 { "1 image".to_owned() } else { format!("{} images", denied.len()) };
    let lines: Vec<String> = denied.iter().map(|v| format!("- {}: {}", v.describe(), v.reasons.join("; "))).collect();
    format!("notarium: {count} failed the trust policies:\n{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn review(group: &str, kind: &str, operation: &str, object: Value) -> Value {
        json!({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": group, "version": "v1", "kind": kind},
                "resource": {"group": group, "version": "v1", "resource": format!("{}s", kind.to_lowercase())},
                "operation": operation,
                "userInfo": {"username": "admin"},
                "object": object,
                "oldObject": null,
                "dryRun": false,
            },
        })
    }

    fn pod_spec() -> Value {
        json!({
            "initContainers": [{"name": "migrate", "image": "reg.example/app/migrate:v1"}],
            "containers": [
                {"name": "app", "image": "reg.example/app:v1"},
                {"name": "sidecar", "image": "reg.example/app:v1"},
            ],
            "ephemeralContainers": [{"name": "debugger", "image": "reg.example/tools/debug@sha256:abc"}],
        })
    }

    fn images_of(group: &str, kind: &str, object: Value) -> Vec<ImageUse> {
        AdmissionRequest::from_review(review(group, kind, "CREATE", object)).unwrap().images().unwrap()
    }

    fn expected() -> Vec<ImageUse> {
        let using = |image: &str, containers: &[&str]| ImageUse {
            image: image.into(),
            containers: containers.iter().map(|c| (*c).to_owned()).collect(),
        };
        vec![
            using("reg.example/app/migrate:v1", &["initContainers/migrate"]),
            using("reg.example/app:v1", &["containers/app", "containers/sidecar"]),
            using("reg.example/tools/debug@sha256:abc", &["ephemeralContainers/debugger"]),
        ]
    }

    #[test]
    fn each_workload_kind_has_its_pod_spec_at_its_path() {
        let template = json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": pod_spec()}}});
        assert_eq!(images_of("", "Pod", json!({"spec": pod_spec()})), expected());
        for kind in ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"] {
            assert_eq!(images_of("apps", kind, template.clone()), expected(), "{kind}");
        }
        assert_eq!(images_of("batch", "Job", template.clone()), expected());
        assert_eq!(images_of("", "ReplicationController", template.clone()), expected());
        let cron = json!({"spec": {"schedule": "* * * * *", "jobTemplate": template}});
        assert_eq!(images_of("batch", "CronJob", cron), expected());
    }

    #[test]
    fn other_kinds_operations_and_subresources_have_nothing_to_check() {
        assert!(images_of("", "ConfigMap", json!({"data": {}})).is_empty());
        assert!(images_of("example.com", "Deployment", json!({})).is_empty(), "a custom resource is not apps'");
        let delete = review("", "Pod", "DELETE", Value::Null);
        assert!(AdmissionRequest::from_review(delete).unwrap().images().unwrap().is_empty());
        let mut status = review("", "Pod", "UPDATE", json!({"spec": pod_spec()}));
        status["request"]["subResource"] = json!("status");
        assert!(AdmissionRequest::from_review(status).unwrap().images().unwrap().is_empty());
        let mut ephemeral = review("", "Pod", "UPDATE", json!({"spec": pod_spec()}));
        ephemeral["request"]["subResource"] = json!("ephemeralcontainers");
        assert_eq!(AdmissionRequest::from_review(ephemeral).unwrap().images().unwrap(), expected());
    }

    #[test]
    fn containers_without_an_image_are_skipped() {
        let spec = json!({"containers": [{"name": "later"}, {"name": "empty", "image": ""}]});
        assert!(images_of("", "Pod", json!({"spec": spec})).is_empty());
    }

    #[test]
    fn malformed_reviews_say_what_is_wrong() {
        let parse = |v: Value| AdmissionRequest::from_review(v).and_then(|r| r.images()).unwrap_err();
        let mut beta = review("", "Pod", "CREATE", json!({"spec": pod_spec()}));
        beta["apiVersion"] = json!("admission.k8s.io/v1beta1");
        assert_eq!(parse(beta), AdmissionError::ApiVersion("admission.k8s.io/v1beta1".into()));
        assert_eq!(parse(json!({"apiVersion": API_VERSION, "kind": KIND})), AdmissionError::NoRequest);
        let mut no_uid = review("", "Pod", "CREATE", json!({"spec": pod_spec()}));
        no_uid["request"].as_object_mut().unwrap().remove("uid");
        assert!(parse(no_uid).to_string().contains("uid"));
        let no_template = parse(review("apps", "Deployment", "CREATE", json!({"spec": {}})));
        assert_eq!(no_template.to_string(), "request.object.spec.template is missing or not an object");
        let bad_list = parse(review("", "Pod", "CREATE", json!({"spec": {"containers": "app"}})));
        assert_eq!(bad_list.to_string(), "request.object.spec.containers is not a list");
        let spec = json!({"spec": {"template": {"spec": {"initContainers": [{"name": "x", "image": 7}]}}}});
        let bad_image = parse(review("batch", "Job", "CREATE", spec));
        assert_eq!(bad_image.to_string(), "request.object.spec.template.spec.initContainers[0].image is not a string");
        assert_eq!(parse(review("", "Pod", "CREATE", Value::Null)).to_string(), "request.object is missing");
    }

    fn verdict(image: &str, allowed: bool, reasons: &[&str]) -> ImageVerdict {
        ImageVerdict {
            image: ImageUse { image: image.into(), containers: vec!["containers/app".into()] },
            digest: Some("sha256:abc".into()),
            allowed,
            reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn a_denial_lists_each_failing_image_and_warnings_come_from_allowed_images_with_reasons() {
        let verdicts = [
            verdict("reg.example/a:v1", false, &["no valid signature by prod", "1 of the 2 required authorities"]),
            verdict("reg.example/b:v1", true, &[]),
            verdict("reg.example/c:v1", true, &["no valid signature by dev"]),
        ];
        let answer = serde_json::to_value(AdmissionReview::answer("uid-1", &verdicts)).unwrap();
        assert_eq!(answer["apiVersion"], API_VERSION);
        assert_eq!(answer["kind"], KIND);
        assert_eq!(answer["response"]["uid"], "uid-1");
        assert_eq!(answer["response"]["allowed"], false);
        assert_eq!(answer["response"]["status"]["code"], 403);
        assert_eq!(
            answer["response"]["status"]["message"],
            "notarium: 1 image failed the trust policies:\n- reg.example/a:v1 (containers/app; sha256:abc): \
             no valid signature by prod; 1 of the 2 required authorities"
        );
        assert_eq!(
            answer["response"]["warnings"],
            json!(["reg.example/c:v1 (containers/app; sha256:abc): would be denied: no valid signature by dev"])
        );
        let allowed = serde_json::to_value(AdmissionReview::answer("uid-2", &verdicts[1..2])).unwrap();
        assert_eq!(allowed["response"], json!({"uid": "uid-2", "allowed": true}));
    }
}

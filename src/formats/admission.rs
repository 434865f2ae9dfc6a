//! Kubernetes `admission.k8s.io/v1` AdmissionReview: the request as the API server sends it, the images a
//! workload would run (containers, init containers and ephemeral containers of the pod spec at the path its
//! kind keeps it, each with the RFC 6901 pointer to its `image` field), and the review sent back: a
//! validating answer, or a mutating one whose RFC 6902 JSONPatch pins tags to the digests verified for them.
//!
//! Owns: the AdmissionReview shapes, where each workload kind holds its pod spec, and the patch. Must not
//! touch: how an image is decided (`service::verify`), the network, or HTTP status codes (`api`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Digest, ImageReference};

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// The Kubernetes Status code a denial carries inside the review (the HTTP answer itself is 200).
const DENIED_CODE: u16 = 403;

/// The container lists of a pod spec, in the order kubelet starts them.
const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// The `patchType` of a mutating answer that carries a patch.
const PATCH_TYPE: &str = "JSONPatch";

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
    /// The object before an UPDATE.
    #[serde(default)]
    pub old_object: Option<Value>,
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
        Ok(by_image(self.container_images()?))
    }

    /// The images the mutating webhook pins: those of [`images`](Self::images) named by tag only. On an
    /// UPDATE, a container that runs what it ran in `oldObject` is left as it is: pinning it would roll a
    /// workload out (or restart a pod's container) on an update that did not touch its image, to whatever the
    /// tag names now, and an ephemeral container cannot be changed at all.
    pub fn images_to_pin(&self) -> Result<Vec<ImageUse>, AdmissionError> {
        let unchanged = self.old_container_images();
        let to_pin = self.container_images()?.into_iter().filter(|container| {
            !names_a_digest(&container.image)
                && !unchanged.iter().any(|old| old.label == container.label && old.image == container.image)
        });
        Ok(by_image(to_pin.collect()))
    }

    fn container_images(&self) -> Result<Vec<ContainerImage>, AdmissionError> {
        let Some(path) = pod_spec_path(&self.kind) else { return Ok(Vec::new()) };
        let checked_operation = matches!(self.operation.as_str(), "CREATE" | "UPDATE");
        let checked_subresource =
            self.sub_resource.as_deref().is_none_or(|s| s.is_empty() || s == "ephemeralcontainers");
        if !checked_operation || !checked_subresource {
            return Ok(Vec::new());
        }
        let object = self.object.as_ref().ok_or(AdmissionError::Object { path: String::new(), reason: "missing" })?;
        pod_spec_containers(pod_spec(object, path)?, path)
    }

    /// The containers of `oldObject`; none when there is no old object or its pod spec cannot be read (the
    /// new object alone is then what counts).
    fn old_container_images(&self) -> Vec<ContainerImage> {
        let (Some(path), Some(old)) = (pod_spec_path(&self.kind), self.old_object.as_ref()) else {
            return Vec::new();
        };
        pod_spec(old, path).and_then(|spec| pod_spec_containers(spec, path)).unwrap_or_default()
    }
}

/// Whether `image` is pinned by digest already. A reference that does not parse is not: deciding it says why.
fn names_a_digest(image: &str) -> bool {
    ImageReference::parse(image).is_ok_and(|reference| reference.digest.is_some())
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
    /// RFC 6901 pointers to the `image` field of each of those containers in the object, in the same order.
    pub pointers: Vec<String>,
}

/// One container's image and where the object keeps it.
#[derive(Debug)]
struct ContainerImage {
    /// `containers/app`: its list and its name (its index when it has none).
    label: String,
    image: String,
    pointer: String,
}

/// The containers with an image of the pod spec at `path`, in the order kubelet starts them. A container
/// without an image is skipped: a workload template may leave it to be filled in later, and the pod it
/// becomes is checked then.
fn pod_spec_containers(spec: &Value, path: &[&str]) -> Result<Vec<ContainerImage>, AdmissionError> {
    let spec_path = format!(".{}", path.join("."));
    let mut found = Vec::new();
    for list in CONTAINER_LISTS {
        for (index, container) in containers(spec, &format!("{spec_path}.{list}"), list)?.iter().enumerate() {
            let name = container.get("name").and_then(Value::as_str).map_or_else(|| index.to_string(), str::to_owned);
            let image = match container.get("image") {
                None | Some(Value::Null) => continue,
                Some(Value::String(image)) if image.is_empty() => continue,
                Some(Value::String(image)) => image.clone(),
                Some(_) => {
                    let path = format!("{spec_path}.{list}[{index}].image");
                    return Err(AdmissionError::Object { path, reason: "not a string" });
                }
            };
            let index = index.to_string();
            let pointer = json_pointer(path.iter().copied().chain([list, index.as_str(), "image"]));
            found.push(ContainerImage { label: format!("{list}/{name}"), image, pointer });
        }
    }
    Ok(found)
}

/// The distinct images of `containers` in first-use order, each with the containers that run it.
fn by_image(containers: Vec<ContainerImage>) -> Vec<ImageUse> {
    let mut uses: Vec<ImageUse> = Vec::new();
    for ContainerImage { label, image, pointer } in containers {
        match uses.iter_mut().find(|u| u.image == image) {
            Some(found) => {
                found.containers.push(label);
                found.pointers.push(pointer);
            }
            None => uses.push(ImageUse { image, containers: vec![label], pointers: vec![pointer] }),
        }
    }
    uses
}

/// The RFC 6901 JSON Pointer to the value reached through `tokens`, each escaped (`~` as `~0`, `/` as `~1`).
fn json_pointer<'a>(tokens: impl IntoIterator<Item = &'a str>) -> String {
    tokens.into_iter().map(|token| format!("/{}", token.replace('~', "~0").replace('/', "~1"))).collect()
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
    pub digest: Option<Digest>,
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
    /// `JSONPatch` when `patch` is set (mutating answers only).
    #[serde(rename = "patchType", skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// Base64 of the JSON array of RFC 6902 operations applied to the object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

/// One RFC 6902 operation: the value at `path` replaced by `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct PatchOperation {
    op: &'static str,
    path: String,
    value: String,
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
        let response = AdmissionResponse {
            uid: uid.to_owned(),
            allowed: denied.is_empty(),
            status,
            warnings,
            patch_type: None,
            patch: None,
        };
        Self { api_version: API_VERSION, kind: KIND, response }
    }

    /// The mutating answer to the request `uid`, always allowed: every container running an image that was
    /// decided and allowed is pinned to the digest decided (`host/repo:tag@sha256:…`); a denied or undecidable
    /// image stays as written, with a warning saying why (the validating webhook denies it).
    pub fn pin(uid: &str, verdicts: &[ImageVerdict]) -> Self {
        let mut operations = Vec::new();
        let mut warnings = Vec::new();
        for verdict in verdicts {
            match pinned(verdict) {
                Ok(reference) => operations.extend(verdict.image.pointers.iter().map(|path| PatchOperation {
                    op: "replace",
                    path: path.clone(),
                    value: reference.clone(),
                })),
                Err(why) => warnings.push(format!("{}: not pinned to a digest: {why}", verdict.describe())),
            }
        }
        let patch = (!operations.is_empty())
            .then(|| STANDARD.encode(serde_json::to_vec(&operations).expect("strings serialize")));
        let response = AdmissionResponse {
            uid: uid.to_owned(),
            allowed: true,
            status: None,
            warnings,
            patch_type: patch.is_some().then_some(PATCH_TYPE),
            patch,
        };
        Self { api_version: API_VERSION, kind: KIND, response }
    }
}

/// The reference pinning an allowed verdict's image to its digest, or why it is not pinned.
fn pinned(verdict: &ImageVerdict) -> Result<String, String> {
    match &verdict.digest {
        Some(digest) if verdict.allowed => ImageReference::parse(&verdict.image.image)
            .map(|reference| reference.with_digest(digest.clone()).to_string())
            .map_err(|e| e.to_string()),
        _ => Err(verdict.reasons.join("; ")),
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

    /// A well-formed digest for images pinned in these tests.
    const D: &str = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

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
            "ephemeralContainers": [{"name": "debugger", "image": format!("reg.example/tools/debug@{D}")}],
        })
    }

    fn images_of(group: &str, kind: &str, object: Value) -> Vec<ImageUse> {
        AdmissionRequest::from_review(review(group, kind, "CREATE", object)).unwrap().images().unwrap()
    }

    /// The images of `pod_spec()`, with the pointers of a pod spec kept at `spec` (e.g. `/spec/template/spec`).
    fn expected(spec: &str) -> Vec<ImageUse> {
        let using = |image: &str, containers: &[(&str, &str)]| ImageUse {
            image: image.into(),
            containers: containers.iter().map(|(label, _)| (*label).to_owned()).collect(),
            pointers: containers.iter().map(|(_, at)| format!("{spec}/{at}/image")).collect(),
        };
        vec![
            using("reg.example/app/migrate:v1", &[("initContainers/migrate", "initContainers/0")]),
            using("reg.example/app:v1", &[("containers/app", "containers/0"), ("containers/sidecar", "containers/1")]),
            using(
                &format!("reg.example/tools/debug@{D}"),
                &[("ephemeralContainers/debugger", "ephemeralContainers/0")],
            ),
        ]
    }

    #[test]
    fn each_workload_kind_has_its_pod_spec_and_its_patch_paths_at_its_path() {
        let template = json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": pod_spec()}}});
        assert_eq!(images_of("", "Pod", json!({"spec": pod_spec()})), expected("/spec"));
        for kind in ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"] {
            assert_eq!(images_of("apps", kind, template.clone()), expected("/spec/template/spec"), "{kind}");
        }
        assert_eq!(images_of("batch", "Job", template.clone()), expected("/spec/template/spec"));
        assert_eq!(images_of("", "ReplicationController", template.clone()), expected("/spec/template/spec"));
        let cron = json!({"spec": {"schedule": "* * * * *", "jobTemplate": template}});
        assert_eq!(images_of("batch", "CronJob", cron), expected("/spec/jobTemplate/spec/template/spec"));
    }

    #[test]
    fn pointers_escape_tilde_and_slash() {
        assert_eq!(json_pointer(["spec", "containers", "0", "image"]), "/spec/containers/0/image");
        assert_eq!(json_pointer(["a/b", "m~n", "~1", ""]), "/a~1b/m~0n/~01/");
        assert_eq!(json_pointer([]), "");
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
        assert_eq!(AdmissionRequest::from_review(ephemeral).unwrap().images().unwrap(), expected("/spec"));
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
            image: ImageUse {
                image: image.into(),
                containers: vec!["containers/app".into()],
                pointers: vec!["/spec/containers/0/image".into()],
            },
            digest: Some(Digest::parse(D).unwrap()),
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
            format!(
                "notarium: 1 image failed the trust policies:\n- reg.example/a:v1 (containers/app; {D}): \
                 no valid signature by prod; 1 of the 2 required authorities"
            )
        );
        assert_eq!(
            answer["response"]["warnings"],
            json!([format!("reg.example/c:v1 (containers/app; {D}): would be denied: no valid signature by dev")])
        );
        let allowed = serde_json::to_value(AdmissionReview::answer("uid-2", &verdicts[1..2])).unwrap();
        assert_eq!(allowed["response"], json!({"uid": "uid-2", "allowed": true}));
    }

    fn to_pin(operation: &str, object: Value, old_object: Value) -> Vec<ImageUse> {
        let mut review = review("apps", "Deployment", operation, object);
        review["request"]["oldObject"] = old_object;
        AdmissionRequest::from_review(review).unwrap().images_to_pin().unwrap()
    }

    #[test]
    fn images_pinned_by_digest_and_on_update_unchanged_containers_are_not_pinned() {
        let template = |spec: Value| json!({"spec": {"template": {"spec": spec}}});
        let created = to_pin("CREATE", template(pod_spec()), Value::Null);
        assert_eq!(created, expected("/spec/template/spec")[..2], "the digest-pinned debug image is left alone");

        let old = json!({"containers": [{"name": "app", "image": "reg.example/app:v1"}]});
        let new = json!({"containers": [
            {"name": "app", "image": "reg.example/app:v1"},
            {"name": "sidecar", "image": "reg.example/app:v1"},
            {"name": "web", "image": "reg.example/web:v2"},
        ]});
        let updated = to_pin("UPDATE", template(new), template(old));
        let images: Vec<(&str, &[String])> =
            updated.iter().map(|u| (u.image.as_str(), u.pointers.as_slice())).collect();
        assert_eq!(
            images,
            [
                ("reg.example/app:v1", &["/spec/template/spec/containers/1/image".to_owned()][..]),
                ("reg.example/web:v2", &["/spec/template/spec/containers/2/image".to_owned()][..]),
            ],
            "app runs what it ran; sidecar is new and web changed"
        );
        let unreadable_old = to_pin("UPDATE", template(pod_spec()), json!({"spec": "?"}));
        assert_eq!(unreadable_old.len(), 2, "an unreadable oldObject leaves the new object to count");
    }

    /// The operations of a mutating answer's patch, decoded.
    fn patch_of(answer: &Value) -> Value {
        assert_eq!(answer["response"]["patchType"], "JSONPatch", "{answer}");
        let bytes = STANDARD.decode(answer["response"]["patch"].as_str().unwrap()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_mutating_answer_pins_allowed_images_at_every_container_and_warns_about_the_others() {
        let mut shared = verdict("reg.example/app:v1", true, &["would be denied by a warn policy"]);
        shared.image.pointers = vec!["/spec/template/spec/containers/0/image".into(), "/spec/a~1b/image".into()];
        let latest = verdict("reg.example/plain", true, &[]);
        let denied = verdict("reg.example/denied:v1", false, &["no valid signature by prod"]);
        let mut undecidable = verdict("reg.example/gone:v1", false, &["image reg.example/gone:v1 not found"]);
        undecidable.digest = None;
        let answer =
            serde_json::to_value(AdmissionReview::pin("uid-3", &[shared, denied, latest, undecidable])).unwrap();
        assert_eq!((&answer["response"]["uid"], &answer["response"]["allowed"]), (&json!("uid-3"), &json!(true)));
        assert!(answer["response"].get("status").is_none(), "{answer}");
        assert_eq!(
            patch_of(&answer),
            json!([
                {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": format!("reg.example/app:v1@{D}")},
                {"op": "replace", "path": "/spec/a~1b/image", "value": format!("reg.example/app:v1@{D}")},
                {"op": "replace", "path": "/spec/containers/0/image", "value": format!("reg.example/plain:latest@{D}")},
            ])
        );
        assert_eq!(
            answer["response"]["warnings"],
            json!([
                format!(
                    "reg.example/denied:v1 (containers/app; {D}): not pinned to a digest: no valid signature by prod"
                ),
                "reg.example/gone:v1 (containers/app): not pinned to a digest: image reg.example/gone:v1 not found",
            ])
        );
    }

    #[test]
    fn a_mutating_answer_with_nothing_to_pin_has_no_patch() {
        let answer = serde_json::to_value(AdmissionReview::pin("uid-4", &[])).unwrap();
        assert_eq!(answer["response"], json!({"uid": "uid-4", "allowed": true}));
    }
}

//! `POST /v1/admission` and `POST /v1/admission/mutate` against a real registry: AdmissionReview requests
//! shaped as the Kubernetes API server sends them (defaulted objects, userInfo, options) for every workload
//! kind, with images signed by notarium through the running server, allowed or denied with each failing image
//! named; tags resolved to digests; init and ephemeral containers checked; warn policies as warnings; each
//! decision in the register. The mutating webhook pins tags to the digests verified for them (the patch
//! applied here as the API server would) and records nothing.

use crate::support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use support::{Notarium, Registry, client, push_image, push_many};

const UID: &str = "9a1c4a36-5f4e-4b8e-9d55-3c1f0e7b2d10";

/// Group, version, kind and resource of each workload kind the webhook is registered for.
const KINDS: [(&str, &str, &str, &str); 7] = [
    ("", "v1", "Pod", "pods"),
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("batch", "v1", "Job", "jobs"),
    ("batch", "v1", "CronJob", "cronjobs"),
];

/// A container as the API server hands it over after defaulting.
fn container(name: &str, image: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    })
}

fn pod_spec(containers: Vec<Value>, init_containers: Vec<Value>) -> Value {
    let mut spec = json!({
        "containers": containers,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "schedulerName": "default-scheduler",
    });
    if !init_containers.is_empty() {
        spec["initContainers"] = json!(init_containers);
    }
    spec
}

fn metadata(name: &str) -> Value {
    json!({"name": name, "namespace": "shop", "uid": "0d7f3c2e-1b6a-4c7e-8f3d-2a9b5c4e6f71",
        "creationTimestamp": null, "labels": {"app": name}})
}

/// The object of `kind` running pods with `spec`, with the pod spec where that kind keeps it.
fn workload(api_version: &str, kind: &str, spec: Value) -> Value {
    let template = json!({"metadata": {"creationTimestamp": null, "labels": {"app": "web"}}, "spec": spec});
    let selector = json!({"matchLabels": {"app": "web"}});
    let body = match kind {
        "Pod" => spec,
        "Deployment" => json!({"replicas": 2, "selector": selector, "template": template,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}),
        "ReplicaSet" => json!({"replicas": 2, "selector": selector, "template": template}),
        "StatefulSet" => json!({"replicas": 1, "selector": selector, "template": template, "serviceName": "web",
            "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate"}}),
        "DaemonSet" => json!({"selector": selector, "template": template,
            "updateStrategy": {"type": "RollingUpdate"}, "revisionHistoryLimit": 10}),
        "Job" => json!({"backoffLimit": 6, "completions": 1, "parallelism": 1, "template": template}),
        "CronJob" => json!({"schedule": "*/5 * * * *", "concurrencyPolicy": "Allow", "suspend": false,
            "jobTemplate": {"metadata": {"creationTimestamp": null}, "spec": {"backoffLimit": 6, "template": template}}}),
        other => panic!("no object for {other}"),
    };
    json!({"apiVersion": api_version, "kind": kind, "metadata": metadata("web"), "spec": body, "status": {}})
}

/// An AdmissionReview as the API server POSTs it to a validating webhook.
fn review(kind: (&str, &str, &str, &str), operation: &str, object: Value) -> Value {
    let (group, version, kind, resource) = kind;
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    let options = match operation {
        "CREATE" => {
            json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"})
        }
        "UPDATE" => json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}),
        _ => json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}),
    };
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": UID,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": "web",
            "namespace": "shop",
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": options,
        },
    })
}

fn api_version(kind: (&str, &str, &str, &str)) -> String {
    if kind.0.is_empty() { kind.1.to_owned() } else { format!("{}/{}", kind.0, kind.1) }
}

/// A review creating `kind` with these containers.
fn create(kind: (&str, &str, &str, &str), containers: Vec<Value>) -> Value {
    review(kind, "CREATE", workload(&api_version(kind), kind.2, pod_spec(containers, Vec::new())))
}

struct Setup {
    registry: Registry,
    notarium: Notarium,
    _policies: tempfile::TempDir,
    /// `adm/app` images by digest: the first signed by notarium with dev-ecdsa, the second not.
    signed: String,
    unsigned: String,
}

fn setup() -> Setup {
    let registry = Registry::start();
    let policies = tempfile::tempdir().unwrap();
    let host = &registry.host;
    let text = format!(
        "default: deny\npolicies:\n  - name: apps\n    images: [\"{host}/adm/*\"]\n    authorities:\n      - key: dev-ecdsa\n  \
         - name: rollout\n    images: [\"{host}/warned/*\"]\n    authorities:\n      - key: dev-ecdsa\n    mode: warn\n"
    );
    std::fs::write(policies.path().join("admission.yaml"), text).unwrap();
    let dir = policies.path().to_str().unwrap();
    let notarium = Notarium::start_with(&[host], &[("NOTARIUM_POLICIES_DIR", dir)]);
    let digests = push_many(&registry, "adm/app", 2);
    let signed = format!("{host}/adm/app@{}", digests[0]);
    let (status, answer) = notarium.sign(&signed, "dev-ecdsa");
    assert_eq!(status, 201, "{answer}");
    let unsigned = format!("{host}/adm/app@{}", digests[1]);
    Setup { registry, notarium, _policies: policies, signed, unsigned }
}

/// POSTs `review` to the validating webhook; the AdmissionReview's `response`.
fn admit(s: &Setup, review: &Value) -> Value {
    answer(s, "/v1/admission", review)
}

/// POSTs `review` to the mutating webhook; the AdmissionReview's `response`.
fn mutate(s: &Setup, review: &Value) -> Value {
    answer(s, "/v1/admission/mutate", review)
}

/// POSTs `review` to `path`; the AdmissionReview's `response`, after checking the envelope echoes the request.
fn answer(s: &Setup, path: &str, review: &Value) -> Value {
    let (status, content_type, answer) = s.notarium.post(path, review.to_string());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(content_type, "application/json");
    assert_eq!(
        (answer["apiVersion"].as_str(), answer["kind"].as_str()),
        (Some("admission.k8s.io/v1"), Some("AdmissionReview"))
    );
    assert_eq!(answer["response"]["uid"], review["request"]["uid"], "{answer}");
    answer["response"].clone()
}

fn message(response: &Value) -> String {
    response["status"]["message"].as_str().unwrap_or_default().to_owned()
}

/// The `verify` entries of the register, oldest first.
fn verify_entries(notarium: &Notarium) -> Vec<Value> {
    let (status, page) = notarium.get_text("/v1/log/entries?start=0&end=1000");
    assert_eq!(status, 200, "{page}");
    let page: Value = serde_json::from_str(&page).unwrap();
    page["entries"].as_array().unwrap().iter().map(|e| e["entry"].clone()).filter(|e| e["kind"] == "verify").collect()
}

#[test]
fn every_workload_kind_is_allowed_with_signed_images_and_denied_with_an_unsigned_one() {
    let s = setup();
    for kind in KINDS {
        let allowed = admit(&s, &create(kind, vec![container("web", &s.signed)]));
        assert_eq!(allowed, json!({"uid": UID, "allowed": true}), "{}", kind.2);

        let denied = admit(&s, &create(kind, vec![container("web", &s.signed), container("cache", &s.unsigned)]));
        assert_eq!(
            (&denied["allowed"], &denied["status"]["code"]),
            (&json!(false), &json!(403)),
            "{}: {denied}",
            kind.2
        );
        let text = message(&denied);
        assert!(text.contains(&format!("- {} (containers/cache", s.unsigned)), "{}: {text}", kind.2);
        assert!(text.contains("no valid signature by dev-ecdsa"), "{}: {text}", kind.2);
        assert!(!text.contains(&s.signed), "only failing images are listed: {text}");
    }
    assert_eq!(verify_entries(&s.notarium).len(), KINDS.len() * 3, "one entry per image decided");
}

#[test]
fn a_tag_is_resolved_to_its_digest_which_the_denial_and_the_register_name() {
    let s = setup();
    let host = &s.registry.host;
    let signed_digest = s.signed.rsplit_once('@').unwrap().1;
    let unsigned_digest = s.unsigned.rsplit_once('@').unwrap().1;
    // push_many tags its images n0, n1, …: the signed one is adm/app:n0.
    let pod = KINDS[0];
    let allowed = admit(&s, &create(pod, vec![container("web", &format!("{host}/adm/app:n0"))]));
    assert_eq!(allowed["allowed"], true, "{allowed}");
    let entry = verify_entries(&s.notarium).pop().unwrap();
    assert_eq!(entry["subject"]["digest"], signed_digest, "{entry}");
    assert_eq!((&entry["details"]["allowed"], &entry["details"]["policy"]), (&json!(true), &json!("apps")));

    let denied = admit(&s, &create(pod, vec![container("web", &format!("{host}/adm/app:n1"))]));
    assert!(message(&denied).contains(&format!("{host}/adm/app:n1 (containers/web; {unsigned_digest})")), "{denied}");

    // No tag at all means latest.
    let latest = push_image(&s.registry, "adm/plain", "latest", "plain");
    let denied = admit(&s, &create(pod, vec![container("web", &format!("{host}/adm/plain"))]));
    assert!(message(&denied).contains(&format!("{host}/adm/plain (containers/web; {latest})")), "{denied}");
}

#[test]
fn init_and_ephemeral_containers_are_checked() {
    let s = setup();
    let pods = KINDS[0];
    let object =
        workload("v1", "Pod", pod_spec(vec![container("web", &s.signed)], vec![container("migrate", &s.unsigned)]));
    let denied = admit(&s, &review(pods, "CREATE", object));
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(message(&denied).contains(&format!("{} (initContainers/migrate", s.unsigned)), "{denied}");

    // `kubectl debug` adds an ephemeral container through the pods/ephemeralcontainers subresource.
    let mut spec = pod_spec(vec![container("web", &s.signed)], Vec::new());
    spec["ephemeralContainers"] = json!([container("debugger", &s.unsigned)]);
    let mut update = review(pods, "UPDATE", workload("v1", "Pod", spec));
    update["request"]["subResource"] = json!("ephemeralcontainers");
    update["request"]["requestSubResource"] = json!("ephemeralcontainers");
    update["request"]["oldObject"] = workload("v1", "Pod", pod_spec(vec![container("web", &s.signed)], Vec::new()));
    let denied = admit(&s, &update);
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(message(&denied).contains(&format!("{} (ephemeralContainers/debugger", s.unsigned)), "{denied}");
}

#[test]
fn a_warn_policy_allows_with_warnings_and_a_dry_run_records_nothing() {
    let s = setup();
    let digest = push_many(&s.registry, "warned/app", 1).remove(0);
    let warned = format!("{}/warned/app@{digest}", s.registry.host);
    let mut dry_run = create(KINDS[1], vec![container("web", &warned), container("cache", &s.signed)]);
    dry_run["request"]["dryRun"] = json!(true);
    let response = admit(&s, &dry_run);
    assert_eq!(response["allowed"], true, "{response}");
    let warnings = response["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{response}");
    let warning = warnings[0].as_str().unwrap();
    assert!(warning.starts_with(&format!("{warned} (containers/web; {digest}): would be denied:")), "{warning}");
    assert!(warning.contains("no valid signature by dev-ecdsa"), "{warning}");
    assert!(verify_entries(&s.notarium).is_empty(), "a dry run has no side effects");

    let response = admit(&s, &create(KINDS[1], vec![container("web", &warned)]));
    assert_eq!(response["warnings"].as_array().map(Vec::len), Some(1), "{response}");
    let entries = verify_entries(&s.notarium);
    assert_eq!(entries.len(), 1);
    assert_eq!((&entries[0]["details"]["mode"], &entries[0]["details"]["allowed"]), (&json!("warn"), &json!(true)));
}

#[test]
fn images_that_cannot_be_decided_are_denied_with_the_reason() {
    let s = setup();
    let host = &s.registry.host;
    let containers = vec![
        container("hub", "nginx:1.27"),
        container("gone", &format!("{host}/adm/app:no-such-tag")),
        container("web", &s.signed),
    ];
    let denied = admit(&s, &create(KINDS[0], containers));
    assert_eq!(denied["allowed"], false, "{denied}");
    let text = message(&denied);
    assert!(text.starts_with("notarium: 2 images failed the trust policies:"), "{text}");
    assert!(
        text.contains("- nginx:1.27 (containers/hub): image reference \"nginx:1.27\" has no registry host"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "- {host}/adm/app:no-such-tag (containers/gone): image {host}/adm/app:no-such-tag not found"
        )),
        "{text}"
    );
}

#[test]
fn other_operations_and_kinds_are_allowed_unchecked() {
    let s = setup();
    let mut delete = review(KINDS[0], "DELETE", Value::Null);
    delete["request"]["oldObject"] = workload("v1", "Pod", pod_spec(vec![container("web", &s.unsigned)], Vec::new()));
    assert_eq!(admit(&s, &delete), json!({"uid": UID, "allowed": true}));
    let config_map =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata("web"), "data": {"image": s.unsigned}});
    assert_eq!(
        admit(&s, &review(("", "v1", "ConfigMap", "configmaps"), "CREATE", config_map)),
        json!({"uid": UID, "allowed": true})
    );
    let scale =
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": metadata("web"), "spec": {"replicas": 3}});
    let mut scale_review = review(("autoscaling", "v1", "Scale", "deployments"), "UPDATE", scale);
    scale_review["request"]["subResource"] = json!("scale");
    assert_eq!(admit(&s, &scale_review), json!({"uid": UID, "allowed": true}));
    assert!(verify_entries(&s.notarium).is_empty());
}

#[test]
fn a_malformed_review_is_a_problem_and_changes_nothing() {
    let s = setup();
    let before = tree_size(&s.notarium);
    for path in ["/v1/admission", "/v1/admission/mutate"] {
        let problem = |body: String, status: u16, detail: &str| {
            let (got, content_type, answer) = s.notarium.post(path, body);
            assert_eq!((got, content_type.as_str()), (status, "application/problem+json"), "{path}: {answer}");
            assert!(answer["detail"].as_str().unwrap().contains(detail), "{path}: {answer}");
            answer
        };
        problem("{\"kind\": \"AdmissionReview\"".into(), 400, "");
        let mut beta = create(KINDS[0], vec![container("web", &s.signed)]);
        beta["apiVersion"] = json!("admission.k8s.io/v1beta1");
        let answer = problem(beta.to_string(), 400, "admission.k8s.io/v1beta1");
        assert_eq!(answer["type"], "https://notarium.dev/problems/malformed-admission-review");
        problem(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).to_string(), 400, "no request");
        let mut no_uid = create(KINDS[0], vec![container("web", &s.signed)]);
        no_uid["request"].as_object_mut().unwrap().remove("uid");
        problem(no_uid.to_string(), 400, "uid");
        let no_template =
            review(KINDS[1], "CREATE", json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}}));
        problem(no_template.to_string(), 400, "request.object.spec.template");
    }
    assert_eq!(tree_size(&s.notarium), before, "nothing reached the register");
}

/// The size of the register's tree, from its checkpoint.
fn tree_size(notarium: &Notarium) -> u64 {
    let (status, checkpoint) = notarium.get_text("/v1/log/checkpoint");
    assert_eq!(status, 200, "{checkpoint}");
    checkpoint.lines().nth(1).unwrap().parse().unwrap()
}

/// The digest the registry itself names for `repo:tag` (its `Docker-Content-Digest` header), not notarium's.
fn registry_digest(registry: &Registry, repo: &str, tag: &str) -> String {
    let response = client()
        .head(format!("http://{}/v2/{repo}/manifests/{tag}", registry.host))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap();
    assert!(response.status().is_success(), "HEAD {repo}:{tag}: {}", response.status());
    response.headers()["docker-content-digest"].to_str().unwrap().to_owned()
}

/// `object` after the mutating answer's JSONPatch, applied as the API server would (only `replace`, which
/// RFC 6902 allows only at a path that exists).
fn patched(mut object: Value, response: &Value) -> Value {
    let Some(patch) = response["patch"].as_str() else {
        assert!(response.get("patchType").is_none(), "{response}");
        return object;
    };
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let operations: Value = serde_json::from_slice(&STANDARD.decode(patch).unwrap()).unwrap();
    for operation in operations.as_array().unwrap() {
        assert_eq!(operation["op"], "replace", "{operation}");
        let path = operation["path"].as_str().unwrap();
        *object.pointer_mut(path).unwrap_or_else(|| panic!("{path} is not in the object")) = operation["value"].clone();
    }
    object
}

/// The images of the pod spec at `spec` (a JSON Pointer) of `object`, as `list/name = image`.
fn images_at(object: &Value, spec: &str) -> Vec<String> {
    let spec = object.pointer(spec).unwrap();
    ["initContainers", "containers"]
        .iter()
        .flat_map(|list| spec[list].as_array().into_iter().flatten().map(move |c| (list, c)))
        .map(|(list, c)| format!("{list}/{} = {}", c["name"].as_str().unwrap(), c["image"].as_str().unwrap()))
        .collect()
}

#[test]
fn mutate_pins_tags_to_the_verified_digest_in_a_deployment_and_a_cronjob_and_records_nothing() {
    let s = setup();
    let host = &s.registry.host;
    // push_many tags its images n0, n1, …: the signed one is adm/app:n0.
    let digest = registry_digest(&s.registry, "adm/app", "n0");
    let tagged = format!("{host}/adm/app:n0");
    let pinned = format!("{tagged}@{digest}");
    let latest = push_image(&s.registry, "adm/plain", "latest", "plain");
    assert_eq!(s.notarium.sign(&format!("{host}/adm/plain@{latest}"), "dev-ecdsa").0, 201);
    for (kind, spec) in [(KINDS[1], "/spec/template/spec"), (KINDS[6], "/spec/jobTemplate/spec/template/spec")] {
        let before = tree_size(&s.notarium);
        let containers = vec![
            container("web", &tagged),
            container("by-digest", &s.signed),
            container("plain", &format!("{host}/adm/plain")),
        ];
        let object = workload(&api_version(kind), kind.2, pod_spec(containers, vec![container("migrate", &tagged)]));
        let response = mutate(&s, &review(kind, "CREATE", object.clone()));
        assert_eq!(response["allowed"], true, "{}: {response}", kind.2);
        assert!(response.get("warnings").is_none(), "{}: {response}", kind.2);
        let object = patched(object, &response);
        assert_eq!(
            images_at(&object, spec),
            [
                format!("initContainers/migrate = {pinned}"),
                format!("containers/web = {pinned}"),
                format!("containers/by-digest = {}", s.signed),
                format!("containers/plain = {host}/adm/plain:latest@{latest}"),
            ],
            "{}",
            kind.2
        );
        assert_eq!(tree_size(&s.notarium), before, "{}: the mutating webhook records nothing", kind.2);

        // Kubernetes then sends the patched object to the validating webhook, which records its decisions.
        let validated = admit(&s, &review(kind, "CREATE", object));
        assert_eq!(validated, json!({"uid": UID, "allowed": true}), "{}", kind.2);
        // Three distinct images: the pinned tag, the same digest named without a tag, and adm/plain.
        let entries = verify_entries(&s.notarium);
        let mut recorded: Vec<&str> =
            entries.iter().rev().take(3).map(|e| e["subject"]["digest"].as_str().unwrap()).collect();
        recorded.sort_unstable();
        let mut expected = [digest.as_str(), digest.as_str(), latest.as_str()];
        expected.sort_unstable();
        assert_eq!(recorded, expected, "{}: the validating webhook recorded the pinned digests", kind.2);
    }
}

#[test]
fn mutate_leaves_denied_and_undecidable_images_unchanged_with_a_warning() {
    let s = setup();
    let host = &s.registry.host;
    let unsigned_digest = s.unsigned.rsplit_once('@').unwrap().1;
    let before = tree_size(&s.notarium);
    let containers = vec![
        container("unsigned", &format!("{host}/adm/app:n1")),
        container("gone", &format!("{host}/adm/app:no-such-tag")),
        container("unsigned-by-digest", &s.unsigned),
    ];
    let object = workload("apps/v1", "Deployment", pod_spec(containers, Vec::new()));
    let mut dry_run = review(KINDS[1], "CREATE", object.clone());
    dry_run["request"]["dryRun"] = json!(true);
    let response = mutate(&s, &review(KINDS[1], "CREATE", object));
    assert_eq!(mutate(&s, &dry_run), response, "a dry run is answered alike");
    assert_eq!(response["allowed"], true, "the mutating webhook leaves denying to the validating one: {response}");
    assert!(response.get("patch").is_none() && response.get("patchType").is_none(), "{response}");
    let warnings: Vec<&str> = response["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(warnings.len(), 2, "a digest-pinned image is not decided here: {warnings:?}");
    assert!(
        warnings[0].starts_with(&format!(
            "{host}/adm/app:n1 (containers/unsigned; {unsigned_digest}): not pinned to a digest: "
        )),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("no valid signature by dev-ecdsa"), "{warnings:?}");
    assert_eq!(
        warnings[1],
        format!(
            "{host}/adm/app:no-such-tag (containers/gone): not pinned to a digest: image {host}/adm/app:no-such-tag \
             not found in its registry"
        )
    );
    assert_eq!(tree_size(&s.notarium), before, "a denial at mutation is recorded by the validating webhook only");
}

#[test]
fn mutate_on_an_update_pins_only_containers_whose_image_changed() {
    let s = setup();
    let host = &s.registry.host;
    let digest = registry_digest(&s.registry, "adm/app", "n0");
    let tagged = format!("{host}/adm/app:n0");
    let deployment = |containers| workload("apps/v1", "Deployment", pod_spec(containers, Vec::new()));
    let old = deployment(vec![container("web", &tagged)]);
    let new = deployment(vec![container("web", &tagged), container("sidecar", &tagged)]);
    let mut update = review(KINDS[1], "UPDATE", new.clone());
    update["request"]["oldObject"] = old.clone();
    let object = patched(new, &mutate(&s, &update));
    assert_eq!(
        images_at(&object, "/spec/template/spec"),
        [format!("containers/web = {tagged}"), format!("containers/sidecar = {tagged}@{digest}")],
        "web runs what it ran (pinning it would roll the Deployment out); sidecar is new"
    );

    // A scale or an annotation change of a workload with a tag-only image is not a rollout.
    let mut unchanged = review(KINDS[1], "UPDATE", old.clone());
    unchanged["request"]["oldObject"] = old;
    assert_eq!(mutate(&s, &unchanged), json!({"uid": UID, "allowed": true}));
}

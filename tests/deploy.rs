//! deploy/kubernetes: every overlay with every TLS component renders offline with `kubectl kustomize`, every
//! rendered object validates against Kubernetes' own JSON schemas (kubernetes-validate, strict: no unknown
//! field), and the rendered objects keep what a cluster depends on: webhooks that exempt kube-system and
//! notarium's namespace and fail closed on notarium's real admission routes (read from the OpenAPI document,
//! so a renamed route fails here), probes on the real health routes, a non-root read-only container, and
//! the replica count and storage of each overlay. The shipped notarium.toml also serves, as the pod would run
//! it: on a non-loopback address with TLS, authentication from the start and its keys in Vault (OpenBao). The CRD kinds (ServiceMonitor, Certificate, Issuer) have no
//! schema in that package: they are validated against their CRDs' schemas from npm (@kubernetes-models) and
//! checked by the assertions below.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::{Notarium, OpenBao, ROOT, tool};

const OVERLAYS: [&str; 2] = ["single-sqlite", "replicas-postgres"];
/// The component an overlay names, and the other one a user switches to by editing that line.
const DEFAULT_TLS: &str = "tls-cert-manager";
const TLS_COMPONENTS: [&str; 2] = ["tls-cert-manager", "tls-secret"];
/// The oldest Kubernetes release still maintained upstream and the newest the schema package knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.33.0", "1.37.0"];
/// Kinds of custom resources: not in Kubernetes' schemas; validated against their CRDs' schemas instead.
const CRD_KINDS: [&str; 3] = ["ServiceMonitor", "Certificate", "Issuer"];
/// The API server gives up on a webhook after 30 seconds whatever it is told.
const API_SERVER_WEBHOOK_CAP_SECS: u64 = 30;

/// One rendering of one overlay with one TLS component.
struct Rendered {
    overlay: &'static str,
    tls: &'static str,
    objects: Vec<Value>,
}

impl Rendered {
    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn one(&self, kind: &str) -> &Value {
        let found = self.of_kind(kind);
        assert_eq!(found.len(), 1, "{self}: one {kind} expected, found {}", found.len());
        found[0]
    }

    fn deployment(&self) -> &Value {
        self.one("Deployment")
    }

    fn container(&self) -> &Value {
        let containers = self.deployment()["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "{self}");
        &containers[0]
    }

    fn namespace(&self) -> &str {
        self.deployment()["metadata"]["namespace"].as_str().unwrap()
    }

    fn volume(&self, name: &str) -> &Value {
        let volumes = self.deployment()["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
        volumes.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("{self}: no volume {name}"))
    }

    /// The volume mounted at `path`.
    fn volume_at(&self, path: &Path) -> &Value {
        let mounts = self.container()["volumeMounts"].as_array().unwrap();
        let mount = mounts
            .iter()
            .find(|m| Path::new(m["mountPath"].as_str().unwrap()) == path)
            .unwrap_or_else(|| panic!("{self}: nothing mounted at {}", path.display()));
        self.volume(mount["name"].as_str().unwrap())
    }

    fn config_map(&self, prefix: &str) -> &Value {
        let found: Vec<_> = self
            .of_kind("ConfigMap")
            .into_iter()
            .filter(|c| c["metadata"]["name"].as_str().unwrap().starts_with(prefix))
            .collect();
        assert_eq!(found.len(), 1, "{self}: one ConfigMap {prefix}*");
        found[0]
    }

    /// The webhooks of both configurations, each with its configuration's kind.
    fn webhooks(&self) -> Vec<(&'static str, &Value)> {
        ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
            .into_iter()
            .flat_map(|kind| {
                let configuration = self.one(kind);
                configuration["webhooks"].as_array().unwrap().iter().map(move |w| (kind, w))
            })
            .collect()
    }
}

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} with {}", self.overlay, self.tls)
    }
}

/// A copy of deploy/kubernetes in `dir` whose `overlay` names the component `tls`, as a user switches it
/// (one line of the overlay's kustomization.yaml).
fn deploy_tree_with(dir: &Path, overlay: &str, tls: &str) -> PathBuf {
    let tree = dir.join("kubernetes");
    copy_tree(&Path::new(ROOT).join("deploy/kubernetes"), &tree);
    let kustomization = tree.join(overlay).join("kustomization.yaml");
    let text = std::fs::read_to_string(&kustomization).unwrap();
    let line = format!("  - ../components/{DEFAULT_TLS}\n");
    assert_eq!(text.matches(&line).count(), 1, "{overlay} names {DEFAULT_TLS} once");
    std::fs::write(&kustomization, text.replace(&line, &format!("  - ../components/{tls}\n"))).unwrap();
    tree.join(overlay)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `kubectl kustomize` (offline), then kubernetes-validate on the output for every version; both must
/// succeed, and only the CRD kinds may lack a schema.
fn render_and_validate(overlay: &'static str, tls: &'static str) -> Rendered {
    let dir = tempfile::tempdir().unwrap();
    let root = deploy_tree_with(dir.path(), overlay, tls);
    let output = Command::new("kubectl").arg("kustomize").arg(&root).output().expect("kubectl (apt kubectl)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl kustomize {overlay} with {tls}: {stderr}");
    let yaml = String::from_utf8(output.stdout).unwrap();
    let rendered_file = dir.path().join("rendered.yaml");
    std::fs::write(&rendered_file, &yaml).unwrap();

    let objects: Vec<Value> =
        yaml_serde::Deserializer::from_str(&yaml).map(|doc| Value::deserialize(doc).unwrap()).collect();
    let rendered = Rendered { overlay, tls, objects };
    let without_schema = validate_against_kubernetes_schemas(&rendered_file);
    let custom: Vec<&Value> =
        rendered.objects.iter().filter(|o| CRD_KINDS.contains(&o["kind"].as_str().unwrap())).collect();
    let custom_kinds: BTreeSet<String> = custom.iter().map(|o| o["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(without_schema, custom_kinds, "{rendered}: only the CRD kinds may go without a schema");
    let report = validate_custom_resources(dir.path(), &custom).unwrap_or_else(|report| panic!("{rendered}: {report}"));
    assert_eq!(report.lines().filter(|l| l.starts_with("VALID ")).count(), custom.len(), "{rendered}: {report}");
    rendered
}

/// Validates custom resources against their CRDs' schemas (tests/tools/validate_crds.mjs, the npm packages
/// @kubernetes-models/cert-manager and prometheus-operator): its report, as `Ok` when every object is valid.
fn validate_custom_resources(dir: &Path, objects: &[&Value]) -> Result<String, String> {
    let file = dir.join("custom-resources.json");
    std::fs::write(&file, serde_json::to_vec(objects).unwrap()).unwrap();
    let modules = Path::new(ROOT).join(".tools/crd-models/node_modules");
    assert!(modules.exists(), "{} is missing: run scripts/install-test-deps.sh", modules.display());
    let output = Command::new("node")
        .arg(Path::new(ROOT).join("tests/tools/validate_crds.mjs"))
        .arg(&modules)
        .arg(&file)
        .output()
        .expect("node");
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if output.status.success() { Ok(report) } else { Err(report) }
}

/// Runs kubernetes-validate (strict) on `file` for every version; answers the kinds it found no schema for.
fn validate_against_kubernetes_schemas(file: &Path) -> BTreeSet<String> {
    let mut command = Command::new(tool("kubernetes-validate"));
    command.args(["--strict", "--quiet"]);
    for version in KUBERNETES_VERSIONS {
        command.args(["-k", version]);
    }
    let output = command.arg(file).output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "kubernetes-validate refused {}:\n{report}", file.display());
    let mut without_schema = BTreeSet::new();
    for line in report.lines() {
        let kind = line
            .strip_prefix("WARN ")
            .and_then(|rest| rest.split_once("Couldn't find schema for kind "))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected kubernetes-validate line: {line}"));
        without_schema.insert(kind.to_owned());
    }
    without_schema
}

/// Every overlay with every TLS component, rendered and validated once for all the tests here.
fn every_rendering() -> &'static [Rendered] {
    static RENDERINGS: OnceLock<Vec<Rendered>> = OnceLock::new();
    RENDERINGS.get_or_init(|| {
        OVERLAYS.iter().flat_map(|o| TLS_COMPONENTS.iter().map(move |t| render_and_validate(o, t))).collect()
    })
}

/// `(method, path)` → operation of notarium's OpenAPI document.
fn operations() -> BTreeMap<(String, String), Value> {
    let document = serde_json::to_value(notarium::api::openapi()).unwrap();
    let mut operations = BTreeMap::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.insert((method.to_uppercase(), path.clone()), operation.clone());
        }
    }
    operations
}

/// The path of the operation a handler (its OpenAPI operationId) serves.
fn path_of(operation_id: &str) -> String {
    let found: Vec<_> =
        operations().into_iter().filter(|(_, op)| op["operationId"] == operation_id).map(|((_, p), _)| p).collect();
    assert_eq!(found.len(), 1, "one operation {operation_id} in the OpenAPI document");
    found[0].clone()
}

fn is_public_get(path: &str) -> bool {
    let operations = operations();
    let operation =
        operations.get(&("GET".to_owned(), path.to_owned())).unwrap_or_else(|| panic!("no GET {path} in the API"));
    operation.get("security").is_none()
}

#[test]
fn every_overlay_with_every_tls_component_renders_and_validates_against_the_kubernetes_schemas() {
    let renderings = every_rendering();
    assert_eq!(renderings.len(), OVERLAYS.len() * TLS_COMPONENTS.len());
    for rendered in renderings {
        let kinds: BTreeSet<_> = rendered.objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        for kind in [
            "Namespace",
            "ServiceAccount",
            "ConfigMap",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "ServiceMonitor",
            "NetworkPolicy",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ] {
            assert!(kinds.contains(kind), "{rendered}: no {kind}");
        }
        assert_eq!(rendered.one("Namespace")["metadata"]["name"], "notarium", "{rendered}");
    }
}

#[test]
fn the_schema_check_refuses_an_unknown_field() {
    // Guards the check above: a misspelled field must fail it, not pass silently.
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = every_rendering()[0].deployment().clone();
    let replicas = deployment["spec"].as_object_mut().unwrap().remove("replicas").unwrap();
    deployment["spec"]["replica"] = replicas;
    let file = dir.path().join("misspelled.yaml");
    std::fs::write(&file, yaml_serde::to_string(&deployment).unwrap()).unwrap();
    let output = Command::new(tool("kubernetes-validate")).args(["--strict", "--quiet"]).arg(&file).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("'replica' was unexpected"));
}

#[test]
fn the_custom_resource_check_refuses_a_value_outside_the_crd_schema() {
    // Guards the CRD check: an algorithm cert-manager does not know must fail it.
    let dir = tempfile::tempdir().unwrap();
    let rendered = every_rendering().iter().find(|r| r.tls == "tls-cert-manager").unwrap();
    let mut certificate = rendered.one("Certificate").clone();
    certificate["spec"]["privateKey"]["algorithm"] = json!("DSA");
    let report = validate_custom_resources(dir.path(), &[&certificate]).unwrap_err();
    assert!(report.contains("INVALID cert-manager.io/v1 Certificate") && report.contains("algorithm"), "{report}");
    let mut monitor = rendered.one("ServiceMonitor").clone();
    monitor["spec"]["endpoints"][0]["scheme"] = json!("gopher");
    let report = validate_custom_resources(dir.path(), &[&monitor]).unwrap_err();
    assert!(report.contains("INVALID monitoring.coreos.com/v1 ServiceMonitor"), "{report}");
}

#[test]
fn both_webhooks_exempt_kube_system_and_notarium_and_fail_closed_on_the_admission_routes() {
    let validating_path = path_of("admission");
    let mutating_path = path_of("mutate");
    for rendered in every_rendering() {
        let service = rendered.one("Service");
        let webhooks = rendered.webhooks();
        assert_eq!(webhooks.len(), 2, "{rendered}: one mutating and one validating webhook");
        for (kind, webhook) in webhooks {
            let name = format!("{rendered}: {kind} {}", webhook["name"]);
            let exempt: Vec<&str> = webhook["namespaceSelector"]["matchExpressions"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: no namespaceSelector"))
                .iter()
                .filter(|e| e["key"] == "kubernetes.io/metadata.name" && e["operator"] == "NotIn")
                .flat_map(|e| e["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()))
                .collect();
            for namespace in ["kube-system", rendered.namespace()] {
                assert!(exempt.contains(&namespace), "{name}: {namespace} is not exempt");
            }
            assert_eq!(webhook["failurePolicy"], "Fail", "{name}");
            assert_eq!(webhook["sideEffects"], "NoneOnDryRun", "{name}");
            assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]), "{name}");
            let timeout = webhook["timeoutSeconds"].as_u64().unwrap_or_else(|| panic!("{name}: no timeoutSeconds"));
            assert!(timeout < API_SERVER_WEBHOOK_CAP_SECS, "{name}: {timeout} s");

            let target = &webhook["clientConfig"]["service"];
            let expected_path = if kind.starts_with("Mutating") { &mutating_path } else { &validating_path };
            assert_eq!(target["path"], json!(expected_path), "{name}");
            assert_eq!(target["name"], service["metadata"]["name"], "{name}");
            assert_eq!(target["namespace"], service["metadata"]["namespace"], "{name}");
            assert_eq!(target["port"], service["spec"]["ports"][0]["port"], "{name}");
            assert!(operations().contains_key(&("POST".to_owned(), expected_path.clone())), "{name}");

            let resources: BTreeSet<(&str, &str)> = webhook["rules"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|rule| {
                    let groups = rule["apiGroups"].as_array().unwrap();
                    let resources = rule["resources"].as_array().unwrap();
                    assert_eq!(rule["operations"], json!(["CREATE", "UPDATE"]), "{name}");
                    groups
                        .iter()
                        .flat_map(move |g| resources.iter().map(move |r| (g.as_str().unwrap(), r.as_str().unwrap())))
                })
                .collect();
            for wanted in [
                ("", "pods"),
                ("", "pods/ephemeralcontainers"),
                ("", "replicationcontrollers"),
                ("apps", "deployments"),
                ("apps", "replicasets"),
                ("apps", "statefulsets"),
                ("apps", "daemonsets"),
                ("batch", "jobs"),
                ("batch", "cronjobs"),
            ] {
                assert!(resources.contains(&wanted), "{name}: {wanted:?} not sent");
            }
        }
    }
}

#[test]
fn the_api_server_trusts_notariums_certificate_through_the_chosen_tls_component() {
    for rendered in every_rendering() {
        let secret = rendered.volume_at(Path::new("/etc/notarium/tls"))["secret"]["secretName"].clone();
        match rendered.tls {
            "tls-cert-manager" => {
                let certificate = rendered.one("Certificate");
                let issuer = rendered.one("Issuer");
                assert_eq!(certificate["apiVersion"], "cert-manager.io/v1");
                assert_eq!(issuer["apiVersion"], "cert-manager.io/v1");
                assert_eq!(certificate["spec"]["secretName"], secret, "{rendered}");
                assert_eq!(certificate["spec"]["issuerRef"]["name"], issuer["metadata"]["name"], "{rendered}");
                assert_eq!(certificate["spec"]["issuerRef"]["kind"], "Issuer", "{rendered}");
                assert!(issuer["spec"]["selfSigned"].is_object(), "{rendered}");
                let service_name = format!("notarium.{}.svc", rendered.namespace());
                assert!(certificate["spec"]["dnsNames"].as_array().unwrap().contains(&json!(service_name)));
                let from = format!(
                    "{}/{}",
                    certificate["metadata"]["namespace"].as_str().unwrap(),
                    certificate["metadata"]["name"].as_str().unwrap()
                );
                for kind in ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"] {
                    let annotations = &rendered.one(kind)["metadata"]["annotations"];
                    assert_eq!(annotations["cert-manager.io/inject-ca-from"], json!(from), "{rendered}: {kind}");
                }
                for (kind, webhook) in rendered.webhooks() {
                    assert!(webhook["clientConfig"].get("caBundle").is_none(), "{rendered}: {kind}");
                }
            }
            _ => {
                assert!(rendered.of_kind("Certificate").is_empty() && rendered.of_kind("Issuer").is_empty());
                assert_eq!(secret, "notarium-tls", "{rendered}: the Secret deploy/kubernetes/README.md names");
                for (kind, webhook) in rendered.webhooks() {
                    // The documented placeholder, on both webhooks: not base64, so the API server refuses it
                    // until the CA is written in.
                    assert_eq!(webhook["clientConfig"]["caBundle"], "FILL-IN: base64 -w0 ca.pem", "{rendered}: {kind}");
                }
            }
        }
    }
}

#[test]
fn the_pod_runs_non_root_read_only_with_probes_on_the_health_routes() {
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert!(is_public_get(path), "{path} must be a public GET route");
    }
    for rendered in every_rendering() {
        let pod = &rendered.deployment()["spec"]["template"]["spec"];
        let container = rendered.container();
        let security = &container["securityContext"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{rendered}");
        assert_eq!(pod["securityContext"]["runAsUser"], 65532, "{rendered}");
        assert_eq!(security["runAsNonRoot"], true, "{rendered}");
        assert_eq!(security["readOnlyRootFilesystem"], true, "{rendered}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{rendered}");
        assert_eq!(security["capabilities"]["drop"], json!(["ALL"]), "{rendered}");
        assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault", "{rendered}");
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{rendered}");
        assert!(container["resources"]["requests"].is_object() && container["resources"]["limits"].is_object());

        let port = &container["ports"][0];
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = &container[probe]["httpGet"];
            assert_eq!(get["path"], path, "{rendered}: {probe}");
            assert_eq!(get["scheme"], "HTTPS", "{rendered}: {probe} (the listener speaks TLS only)");
            assert_eq!(get["port"], port["name"], "{rendered}: {probe}");
        }
        let service_port = &rendered.one("Service")["spec"]["ports"][0];
        assert_eq!(service_port["targetPort"], port["name"], "{rendered}");
    }
}

#[test]
fn the_configuration_in_the_config_map_loads_and_names_the_pods_mounts() {
    for rendered in every_rendering() {
        let config_map = rendered.config_map("notarium-config");
        let config_volume = rendered.volume_at(Path::new("/etc/notarium/config"));
        assert_eq!(config_volume["configMap"]["name"], config_map["metadata"]["name"], "{rendered}");
        let env = container_env(rendered);
        let config_path = Path::new(env["NOTARIUM_CONFIG"].as_str().unwrap()).to_owned();
        assert_eq!(config_path.parent().unwrap(), Path::new("/etc/notarium/config"), "{rendered}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notarium.toml");
        let text = config_map["data"][config_path.file_name().unwrap().to_str().unwrap()].as_str().unwrap();
        std::fs::write(&file, text).unwrap();
        let plain_env: HashMap<String, String> = env
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .chain(env.get("NOTARIUM_DATABASE_URL").map(|_| {
                ("NOTARIUM_DATABASE_URL".to_owned(), "postgres://notarium@postgres.example/notarium".to_owned())
            }))
            .collect();
        let config = notarium::config::Config::load(Some(&file), &plain_env)
            .unwrap_or_else(|e| panic!("{rendered}: notarium.toml does not load: {e}"));

        let listen: std::net::SocketAddr = config.server.listen.parse().unwrap();
        assert_eq!(listen.port(), rendered.container()["ports"][0]["containerPort"], "{rendered}");
        assert!(config.auth.required, "{rendered}: a cluster listener needs authentication from the start");
        for file in [config.server.tls_cert.as_ref(), config.server.tls_key.as_ref()] {
            let file = file.unwrap_or_else(|| panic!("{rendered}: no TLS"));
            assert!(rendered.volume_at(file.parent().unwrap())["secret"].is_object(), "{rendered}");
        }
        let policies = rendered.config_map("notarium-policies");
        assert_eq!(rendered.volume_at(&config.policies.dir)["configMap"]["name"], policies["metadata"]["name"]);
        for (name, text) in policies["data"].as_object().unwrap() {
            notarium::policy::PolicySet::parse(name, text.as_str().unwrap())
                .unwrap_or_else(|e| panic!("{rendered}: policy {name}: {e}"));
        }
        assert!(rendered.volume_at(&config.server.data_dir).is_object());

        // Every key in Vault, its token from a Secret through the environment.
        assert!(!config.keys.is_empty());
        for key in &config.keys {
            let notarium::config::KeyConfig::Vault(vault) = key else {
                panic!("{rendered}: {} is not in Vault", key.id())
            };
            let Some(notarium::keys::SecretRef::Env(variable)) = vault.token().unwrap() else {
                panic!("{rendered}: {}: token_env expected", vault.id)
            };
            assert!(env[&variable]["secretKeyRef"].is_object(), "{rendered}: {variable} not from a Secret");
        }
        assert!(config.log_key().is_some_and(|k| config.keys.iter().any(|c| c.id() == k)), "{rendered}");
    }
}

/// The container's environment: a name → its value, or its `valueFrom`.
fn container_env(rendered: &Rendered) -> BTreeMap<String, Value> {
    let env = rendered.container()["env"].as_array().unwrap();
    env.iter()
        .map(|e| {
            let value = e.get("value").cloned().unwrap_or_else(|| e["valueFrom"].clone());
            (e["name"].as_str().unwrap().to_owned(), value)
        })
        .collect()
}

#[test]
fn postgres_runs_replicas_without_a_volume_and_sqlite_exactly_one_on_a_claim() {
    for rendered in every_rendering() {
        let deployment = rendered.deployment();
        let replicas = deployment["spec"]["replicas"].as_u64().unwrap();
        let data = rendered.volume("data");
        let env = container_env(rendered);
        match rendered.overlay {
            "replicas-postgres" => {
                assert!(replicas > 1, "{rendered}: {replicas}");
                assert!(rendered.of_kind("PersistentVolumeClaim").is_empty(), "{rendered}");
                assert!(data.get("persistentVolumeClaim").is_none(), "{rendered}");
                assert!(env["NOTARIUM_DATABASE_URL"]["secretKeyRef"].is_object(), "{rendered}");
                assert!(egress_ports(rendered).contains(&5432), "{rendered}: PostgreSQL unreachable");
            }
            _ => {
                assert_eq!(replicas, 1, "{rendered}");
                assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate", "{rendered}: one SQLite writer");
                let claim = rendered.one("PersistentVolumeClaim");
                assert_eq!(data["persistentVolumeClaim"]["claimName"], claim["metadata"]["name"], "{rendered}");
                assert!(data.get("emptyDir").is_none(), "{rendered}");
                assert!(!env.contains_key("NOTARIUM_DATABASE_URL"), "{rendered}");
            }
        }
    }
}

fn egress_ports(rendered: &Rendered) -> BTreeSet<u64> {
    let egress = rendered.one("NetworkPolicy")["spec"]["egress"].as_array().unwrap().clone();
    egress
        .iter()
        .flat_map(|rule| rule["ports"].as_array().unwrap().iter().map(|p| p["port"].as_u64().unwrap()))
        .collect()
}

#[test]
fn network_policy_monitor_and_disruption_budget_select_notariums_pods() {
    for rendered in every_rendering() {
        let pod_labels = &rendered.deployment()["spec"]["template"]["metadata"]["labels"];
        let selects_pods = |selector: &Value| selector.as_object().unwrap().iter().all(|(k, v)| &pod_labels[k] == v);
        let policy = rendered.one("NetworkPolicy");
        assert!(selects_pods(&policy["spec"]["podSelector"]["matchLabels"]), "{rendered}");
        assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]), "{rendered}");
        let port = &rendered.container()["ports"][0]["containerPort"];
        let ingress = policy["spec"]["ingress"].as_array().unwrap();
        assert!(ingress.iter().all(|r| r["ports"].as_array().unwrap().iter().all(|p| &p["port"] == port)));
        let egress = egress_ports(rendered);
        for (port, what) in [(53, "DNS"), (443, "registries"), (8200, "Vault")] {
            assert!(egress.contains(&port), "{rendered}: {what} unreachable");
        }

        let budget = rendered.one("PodDisruptionBudget");
        assert!(selects_pods(&budget["spec"]["selector"]["matchLabels"]), "{rendered}");
        assert_eq!(budget["spec"]["maxUnavailable"], 1, "{rendered}");

        // ServiceMonitor has no schema in the package: its shape is checked here.
        let monitor = rendered.one("ServiceMonitor");
        let service = rendered.one("Service");
        assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(monitor["metadata"]["namespace"], service["metadata"]["namespace"]);
        assert_eq!(monitor["spec"]["namespaceSelector"]["matchNames"], json!([rendered.namespace()]));
        let service_labels = &service["metadata"]["labels"];
        let selector = monitor["spec"]["selector"]["matchLabels"].as_object().unwrap();
        assert!(!selector.is_empty() && selector.iter().all(|(k, v)| &service_labels[k] == v), "{rendered}");
        let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
        assert_eq!(endpoints.len(), 1);
        let endpoint = &endpoints[0];
        assert_eq!(endpoint["port"], service["spec"]["ports"][0]["name"], "{rendered}");
        assert_eq!(endpoint["path"], "/metrics");
        assert_eq!(endpoint["scheme"], "https", "{rendered}: the listener speaks TLS only");
        let tls_secret = &rendered.volume_at(Path::new("/etc/notarium/tls"))["secret"]["secretName"];
        assert_eq!(&endpoint["tlsConfig"]["ca"]["secret"]["name"], tls_secret, "{rendered}");
        assert_eq!(endpoint["tlsConfig"]["ca"]["secret"]["key"], "ca.crt");
        let server_name = format!("{}.{}.svc", service["metadata"]["name"].as_str().unwrap(), rendered.namespace());
        assert_eq!(endpoint["tlsConfig"]["serverName"], json!(server_name));
    }
}

/// The files of a mounted ConfigMap as the kubelet lays them out: each name a symlink into `..data`, itself a
/// symlink to a timestamped folder.
fn mount_config_map(config_map: &Value, dir: &Path) {
    let version = dir.join("..2026_01_01_00_00_00.000000001");
    std::fs::create_dir_all(&version).unwrap();
    std::os::unix::fs::symlink(version.file_name().unwrap(), dir.join("..data")).unwrap();
    for (name, text) in config_map["data"].as_object().unwrap() {
        std::fs::write(version.join(name), text.as_str().unwrap()).unwrap();
        std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name)).unwrap();
    }
}

/// A self-signed serving certificate, as cert-manager's self-signed Issuer makes one (tls.crt is ca.crt).
fn serving_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let subject_names = "subjectAltName=DNS:notarium.notarium.svc,IP:127.0.0.1";
    let leaf = ["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"];
    let files = ["-keyout", key.to_str().unwrap(), "-out", cert.to_str().unwrap()];
    let new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let output = Command::new("openssl")
        .args(["req", "-x509", "-days", "2", "-subj", "/CN=notarium.notarium.svc", "-addext", subject_names])
        .args(new_key.iter().chain(&leaf).chain(&files))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (cert, key)
}

#[test]
fn the_shipped_configuration_serves_tls_with_authentication_and_vault_keys_on_a_cluster_address() {
    let rendered = every_rendering().iter().find(|r| r.overlay == "single-sqlite").unwrap();
    let bao = OpenBao::start();
    bao.ok(&["write", "-f", "transit/keys/notarium-release", "type=ecdsa-p256"]);
    bao.ok(&["write", "-f", "transit/keys/notarium-register", "type=ed25519"]);

    // The pod's mounts, under a temporary folder: the ConfigMaps as the kubelet writes them, the TLS Secret.
    let mounts = tempfile::tempdir().unwrap();
    let at = |path: &str| mounts.path().join(path.trim_start_matches('/'));
    mount_config_map(rendered.config_map("notarium-policies"), &at("/etc/notarium/policies"));
    let (cert, _) = serving_certificate(&at("/etc/notarium/tls"));
    let text = rendered.config_map("notarium-config")["data"]["notarium.toml"].as_str().unwrap();
    let vault = "https://vault.example:8200";
    assert!(text.contains(vault));
    let text = text
        .replace("\"/etc/notarium/", &format!("\"{}/", at("/etc/notarium").display()))
        .replace("\"/var/lib/notarium", &format!("\"{}", at("/var/lib/notarium").display()))
        .replace(vault, &bao.address);
    let policies = at("/etc/notarium/policies");
    // The listen port 0 instead of 8443 (free ports only in tests); the address stays a non-loopback one.
    let env = [
        ("NOTARIUM_LISTEN", "0.0.0.0:0"),
        ("NOTARIUM_POLICIES_DIR", policies.to_str().unwrap()),
        ("VAULT_TOKEN", bao.root_token.as_str()),
    ];
    let server = Notarium::start_with_config(&text, &[], &env);
    assert!(server.url.starts_with("https://0.0.0.0:"), "{}", server.url);
    let url = server.url.replace("0.0.0.0", "127.0.0.1");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let trusted = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = reqwest::blocking::Client::builder().tls_certs_only([trusted]).build().unwrap();
    let get = |path: &str| client.get(format!("{url}{path}")).send().unwrap().status().as_u16();
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get(path), 200, "{path}: {}", server.log());
    }
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "6c1f0c2e-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
            "dryRun": false
        }
    });
    let admission = path_of("admission");
    let post = |token: Option<&str>| {
        let request = client.post(format!("{url}{admission}")).json(&review);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send().unwrap()
    };
    assert_eq!(post(None).status().as_u16(), 401, "authentication is required from the first start");
    let (verifier, _) = server.create_token(&["--role", "verifier"]);
    let answer: Value = post(Some(&verifier)).json().unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let log = server.log();
    assert!(!log.contains("THE API IS OPEN") && !log.contains("EXAMPLE KEYS"), "{log}");
    // The policies were read through the kubelet's symlinks.
    let loaded = log.lines().find(|l| l.contains("trust policies loaded")).unwrap_or_else(|| panic!("{log}"));
    assert!(!loaded.ends_with("policies=0"), "{loaded}");
}

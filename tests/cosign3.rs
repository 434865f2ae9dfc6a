//! Interoperability with cosign 3.1 (Debian sid's build, `.tools/bin/cosign3`) against both registries of the
//! test suite (CNCF distribution without a referrers API, go-containerregistry's with one), both ways and
//! offline: cosign 3.1 `verify --key` and `verify-attestation --key` accept what
//! notarium signs and attests, from the `.sig`/`.att` tags and from the Sigstore bundle referrer; notarium's
//! `POST /v1/verify` accepts what cosign 3.1 signs and attests with a key (bundle referrer by default, the
//! `.sig`/`.att` tags on request) and denies it tampered. No Rekor can run here, so every cosign 3.1 signature is
//! made without a transparency-log entry (an empty signing config) and verified with `--insecure-ignore-tlog`.

use crate::support;

use std::path::Path;

use serde_json::{Value, json};
use support::{Cosign, CosignVersion, Notarium, Registry, RegistryKind, push_image, reasons, slsa_predicate, tag_of};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SLSA: &str = "https://slsa.dev/provenance/v1";

/// Which signature layout cosign 3.1 reads: `--new-bundle-format=true` (its default) takes the bundle
/// referrer and falls back to the `.sig`/`.att` tags; `false` reads only the tags.
#[derive(Clone, Copy, Debug)]
enum Layout {
    Tags,
    Referrer,
}

fn cosign3() -> Cosign {
    Cosign::of(CosignVersion::V3_1)
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `cosign verify` (`command` "verify") or `cosign verify-attestation` with `key`, offline: no TUF, no Rekor.
fn cosign_verifies(
    cosign: &Cosign,
    command: &str,
    layout: Layout,
    key: &Path,
    image: &str,
    extra: &[&str],
) -> (bool, String) {
    let new_bundle_format = format!("--new-bundle-format={}", matches!(layout, Layout::Referrer));
    let args = [command, "--key", key.to_str().unwrap(), &new_bundle_format, "--insecure-ignore-tlog", "--offline"];
    let out = cosign.run(&[&args[..], extra, &["--allow-http-registry", image]].concat());
    (out.status.success(), text(&out))
}

/// Replaces the tag `reference` of `repo` with a manifest of no layers: whatever signature it held is gone.
fn blank_tag(registry: &Registry, repo: &str, reference: &str) {
    let config = registry.put_blob(repo, b"{}".to_vec());
    let empty = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2}, "layers": []});
    registry.put_manifest(repo, reference, OCI_MANIFEST, empty.to_string().into_bytes());
}

/// Removes `digest`'s referrers: empties its fallback index, or deletes each referrer the referrers API lists.
fn drop_referrers(registry: &Registry, repo: &str, digest: &str) {
    if registry.kind.has_referrers_api() {
        for entry in registry.referrer_entries(repo, digest) {
            registry.delete_manifest(repo, entry["digest"].as_str().unwrap());
        }
        return;
    }
    let empty = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
    registry.put_manifest(repo, &digest.replace(':', "-"), OCI_INDEX, empty.to_string().into_bytes());
}

#[test]
fn cosign3_accepts_notarium_signatures_and_attestations_from_the_tags_and_the_referrer() {
    RegistryKind::ALL.into_iter().for_each(cosign3_accepts_notarium);
}

/// On a registry with the referrers API, notarium attaches its bundles through it and writes no fallback tag.
fn cosign3_accepts_notarium(kind: RegistryKind) {
    for layout in [Layout::Tags, Layout::Referrer] {
        let registry = Registry::start_kind(kind);
        let notarium = Notarium::start(&[&registry.host]);
        let digest = push_image(&registry, "c3/app", "v1", "cosign 3 reads me");
        let image = format!("{}/c3/app@{digest}", registry.host);
        assert_eq!(notarium.sign(&image, "dev-ecdsa").0, 201);
        let body = json!({"image": image, "key": "dev-ecdsa", "predicate_type": SLSA, "predicate": slsa_predicate("https://github.com/acme/app")});
        let (status, _, answer) = notarium.post("/v1/attest", body.to_string());
        assert_eq!(status, 201, "{answer}");
        assert_eq!(registry.referrer_entries("c3/app", &digest).len(), 2, "{kind:?}: signature and attestation");
        assert_eq!(registry.has_fallback_tag("c3/app", &digest), !kind.has_referrers_api(), "{kind:?}");
        let cosign = cosign3();
        let key = notarium.public_key_file("dev-ecdsa", cosign.dir());
        let other = Path::new(support::ROOT).join("tests/fixtures/other-p256.pub");
        // Each layout alone: the other one is emptied first.
        match layout {
            Layout::Tags => drop_referrers(&registry, "c3/app", &digest),
            Layout::Referrer => {
                blank_tag(&registry, "c3/app", &tag_of(&digest, "sig"));
                blank_tag(&registry, "c3/app", &tag_of(&digest, "att"));
            }
        }

        let (ok, said) = cosign_verifies(&cosign, "verify", layout, &key, &image, &[]);
        assert!(ok, "cosign 3.1 refused notarium's signature ({kind:?}, {layout:?}): {said}");
        assert!(said.contains(&digest), "{said}");
        let (ok, said) = cosign_verifies(&cosign, "verify", layout, &other, &image, &[]);
        assert!(!ok, "cosign 3.1 accepted notarium's signature with another key ({layout:?}): {said}");

        let slsa = ["--type", "slsaprovenance1"];
        let (ok, said) = cosign_verifies(&cosign, "verify-attestation", layout, &key, &image, &slsa);
        assert!(ok, "cosign 3.1 refused notarium's attestation ({kind:?}, {layout:?}): {said}");
        assert!(said.contains("payload"), "cosign prints the envelope: {said}");
        let (ok, said) = cosign_verifies(&cosign, "verify-attestation", layout, &other, &image, &slsa);
        assert!(!ok, "cosign 3.1 accepted notarium's attestation with another key ({layout:?}): {said}");
    }
}

/// A policy file allowing `{host}/c3/*` signed by `cosign_pem`, `{host}/c3att/*` only with an SLSA provenance
/// from acme/app by the same key.
fn policy_file(host: &str, cosign_pem: &str) -> String {
    let key: String = cosign_pem.lines().map(|l| format!("          {l}\n")).collect();
    format!(
        r#"default: deny
policies:
  - name: cosign3
    images: ["{host}/c3/*"]
    authorities:
      - public_key: |
{key}
  - name: cosign3-provenance
    images: ["{host}/c3att/*"]
    authorities:
      - public_key: |
{key}
    attestations:
      - predicate_type: {SLSA}
        conditions:
          - predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app"
"#
    )
}

/// cosign 3.1's flags for writing `layout` without a transparency-log entry: its default (the bundle referrer)
/// with a signing config naming no log; the tags only with the signing config and the new format turned off
/// (`--tlog-upload=false` is refused otherwise).
fn no_tlog(layout: Layout) -> &'static [&'static str] {
    match layout {
        Layout::Referrer => &["--signing-config", "signing-config.json"],
        Layout::Tags => &["--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false"],
    }
}

struct Setup {
    registry: Registry,
    notarium: Notarium,
    cosign: Cosign,
    _policies: tempfile::TempDir,
}

/// A registry of `kind`, a cosign 3.1 key pair (`cosign.key` in its dir) with a signing config that names no
/// transparency log, and notarium trusting that key under [`policy_file`].
fn setup(kind: RegistryKind) -> Setup {
    let registry = Registry::start_kind(kind);
    let cosign = cosign3();
    assert!(cosign.run(&["generate-key-pair"]).status.success());
    let out = cosign.run(&["signing-config", "create", "--out", "signing-config.json"]);
    assert!(out.status.success(), "cosign signing-config create: {}", text(&out));
    let cosign_pem = std::fs::read_to_string(cosign.dir().join("cosign.pub")).unwrap();
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("cosign3.yaml"), policy_file(&registry.host, &cosign_pem)).unwrap();
    let dir = policies.path().to_str().unwrap();
    let notarium = Notarium::start_with(&[&registry.host], &[("NOTARIUM_POLICIES_DIR", dir)]);
    Setup { registry, notarium, cosign, _policies: policies }
}

impl Setup {
    fn pushed(&self, repo: &str, tag: &str) -> (String, String) {
        let digest = push_image(&self.registry, repo, tag, &format!("{repo}:{tag}"));
        (format!("{}/{repo}@{digest}", self.registry.host), digest)
    }

    /// `cosign sign --key` in `layout`, with no transparency-log entry either way.
    fn sign(&self, image: &str, layout: Layout) {
        let out = self
            .cosign
            .run(&[&["sign", "--key", "cosign.key"][..], no_tlog(layout), &["--allow-http-registry", image]].concat());
        assert!(out.status.success(), "cosign sign ({layout:?}): {}", text(&out));
    }

    /// `cosign attest --key` of an SLSA provenance naming `repository` in `layout`, no tlog entry.
    fn attest(&self, image: &str, layout: Layout, repository: &str) {
        let predicate = self.cosign.dir().join("provenance.json");
        std::fs::write(&predicate, slsa_predicate(repository).to_string()).unwrap();
        let args =
            ["attest", "--key", "cosign.key", "--type", "slsaprovenance1", "--predicate", predicate.to_str().unwrap()];
        let out = self.cosign.run(&[&args[..], no_tlog(layout), &["--allow-http-registry", image]].concat());
        assert!(out.status.success(), "cosign attest ({layout:?}): {}", text(&out));
    }

    /// notarium's decision on `image`, which must be `allowed` or not; the answer.
    /// With the referrers API, notarium finds the referrers through it alone.
    fn decided(&self, image: &str, allowed: bool) -> Value {
        let before = self.registry.requests().len();
        let (status, _, answer) = self.notarium.post("/v1/verify", json!({"image": image}).to_string());
        if self.registry.kind.has_referrers_api() {
            self.registry.assert_referrers_api_only(before);
        }
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["allowed"], allowed, "{answer}");
        answer
    }
}

const COSIGN_SIGN: &str = "https://sigstore.dev/cosign/sign/v1";

/// The referrer of `digest` whose bundle's predicate type is `predicate_type`: its place among `digest`'s
/// referrers (as [`Registry::referrer_entries`] lists them), and the bundle.
fn referrer_bundle(registry: &Registry, repo: &str, digest: &str, predicate_type: &str) -> (usize, Value) {
    let entries = registry.referrer_entries(repo, digest);
    let manifest_of = |entry: &Value| -> Value {
        serde_json::from_slice(&registry.manifest(repo, entry["digest"].as_str().unwrap()).unwrap()).unwrap()
    };
    let position = entries
        .iter()
        .position(|entry| manifest_of(entry)["annotations"]["dev.sigstore.bundle.predicateType"] == predicate_type)
        .unwrap_or_else(|| panic!("no {predicate_type} referrer in {entries:?}"));
    let manifest = manifest_of(&entries[position]);
    assert_eq!(manifest["artifactType"], "application/vnd.dev.sigstore.bundle.v0.3+json", "{manifest}");
    let bundle = registry.blob(repo, manifest["layers"][0]["digest"].as_str().unwrap());
    (position, serde_json::from_slice(&bundle).unwrap())
}

/// Replaces the bundle of the referrer at `position` among `digest`'s referrers with `bundle`: a new referrer
/// manifest, listed instead of the original in the fallback index, or, on a registry with the referrers API,
/// pushed (the registry lists it) with the original deleted.
fn replace_referrer_bundle(registry: &Registry, repo: &str, digest: &str, position: usize, bundle: &Value) {
    let entries = registry.referrer_entries(repo, digest);
    let old_digest = entries[position]["digest"].as_str().unwrap();
    let mut manifest: Value = serde_json::from_slice(&registry.manifest(repo, old_digest).unwrap()).unwrap();
    let bytes = serde_json::to_vec(bundle).unwrap();
    manifest["layers"][0]["size"] = json!(bytes.len());
    manifest["layers"][0]["digest"] = json!(registry.put_blob(repo, bytes));
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let new_digest = support::sha256_digest(&manifest);
    registry.put_manifest(repo, &new_digest, OCI_MANIFEST, manifest.clone());
    if registry.kind.has_referrers_api() {
        registry.delete_manifest(repo, old_digest);
        return;
    }
    let mut entries = entries.clone();
    entries[position]["digest"] = json!(new_digest);
    entries[position]["size"] = json!(manifest.len());
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    registry.put_manifest(repo, &digest.replace(':', "-"), OCI_INDEX, index.to_string().into_bytes());
}

#[test]
fn notarium_allows_what_cosign3_signed_with_a_key_in_either_layout_and_denies_it_tampered() {
    RegistryKind::ALL.into_iter().for_each(allows_what_cosign3_signed);
}

fn allows_what_cosign3_signed(kind: RegistryKind) {
    let s = setup(kind);
    for (tag, layout) in [("referrer", Layout::Referrer), ("tags", Layout::Tags)] {
        let (image, digest) = s.pushed("c3/app", tag);
        let answer = s.decided(&image, false);
        assert!(reasons(&answer).contains("no valid signature by public_key #1"), "{answer}");
        s.sign(&image, layout);
        let answer = s.decided(&image, true);
        assert_eq!(answer["policy"], "cosign3", "{answer}");
        // Only the layout asked for was written.
        let sig_tag = s.registry.manifest("c3/app", &tag_of(&digest, "sig"));
        assert_eq!(sig_tag.is_some(), matches!(layout, Layout::Tags), "{layout:?}");
    }

    // A referrer bundle whose signature no longer matches its statement.
    let (image, digest) = s.pushed("c3/app", "tampered");
    s.sign(&image, Layout::Referrer);
    let (position, mut bundle) = referrer_bundle(&s.registry, "c3/app", &digest, COSIGN_SIGN);
    let signature = bundle["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap();
    let flipped = format!("{}{}", if signature.starts_with('M') { 'N' } else { 'M' }, &signature[1..]);
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = json!(flipped);
    replace_referrer_bundle(&s.registry, "c3/app", &digest, position, &bundle);
    let answer = s.decided(&image, false);
    assert!(reasons(&answer).contains("no valid signature by public_key #1"), "{answer}");

    // A bundle cosign made for one image, put in place of another image's.
    let (original, original_digest) = s.pushed("c3/app", "original");
    s.sign(&original, Layout::Referrer);
    let (_, bundle) = referrer_bundle(&s.registry, "c3/app", &original_digest, COSIGN_SIGN);
    let (copied, copied_digest) = s.pushed("c3/app", "copied");
    s.sign(&copied, Layout::Referrer);
    replace_referrer_bundle(&s.registry, "c3/app", &copied_digest, 0, &bundle);
    let answer = s.decided(&copied, false);
    assert!(reasons(&answer).contains("no valid signature by public_key #1"), "{answer}");
}

#[test]
fn notarium_reads_the_attestation_cosign3_attached_and_denies_another_repository_or_a_tampered_one() {
    RegistryKind::ALL.into_iter().for_each(reads_the_attestation_cosign3_attached);
}

fn reads_the_attestation_cosign3_attached(kind: RegistryKind) {
    let s = setup(kind);
    for layout in [Layout::Referrer, Layout::Tags] {
        let (image, digest) = s.pushed("c3att/app", &format!("{layout:?}"));
        s.sign(&image, layout);
        let answer = s.decided(&image, false);
        assert!(reasons(&answer).contains(SLSA), "{answer}");
        s.attest(&image, layout, "https://github.com/acme/app");
        let answer = s.decided(&image, true);
        assert_eq!(answer["policy"], "cosign3-provenance", "{answer}");
        let att_tag = s.registry.manifest("c3att/app", &tag_of(&digest, "att"));
        assert_eq!(att_tag.is_some(), matches!(layout, Layout::Tags), "{layout:?}");

        let (elsewhere, _) = s.pushed("c3att/app", &format!("{layout:?}-elsewhere"));
        s.sign(&elsewhere, layout);
        s.attest(&elsewhere, layout, "https://github.com/mallory/app");
        s.decided(&elsewhere, false);
    }

    // The attestation's statement rewritten to name acme/app: its signature no longer covers it.
    let (forged, digest) = s.pushed("c3att/app", "forged");
    s.sign(&forged, Layout::Referrer);
    s.attest(&forged, Layout::Referrer, "https://github.com/mallory/app");
    let (position, mut bundle) = referrer_bundle(&s.registry, "c3att/app", &digest, SLSA);
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let payload = engine.decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap();
    let payload = String::from_utf8(payload).unwrap().replace("mallory", "acme");
    bundle["dsseEnvelope"]["payload"] = json!(engine.encode(payload));
    replace_referrer_bundle(&s.registry, "c3att/app", &digest, position, &bundle);
    let answer = s.decided(&forged, false);
    assert!(reasons(&answer).contains(SLSA), "{answer}");
}

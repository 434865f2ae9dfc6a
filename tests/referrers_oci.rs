//! OCI 1.1 referrers against both registries of the test suite. Against CNCF distribution 2.8, which has no
//! referrers API, notarium keeps the fallback tag `sha256-<hex>` itself, every concurrent writer ends up in
//! it, and an entry another tool wrote there (cosign's: empty-config artifact type, no annotations) is kept as
//! it was. Against go-containerregistry's registry, which has the referrers API (but sends no `OCI-Subject`
//! header), notarium attaches and lists through the API and writes no fallback tag.

use crate::support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use notarium::formats::Digest;
use notarium::formats::bundle::{BUNDLE_V0_3, Bundle, CONTENT_MESSAGE_SIGNATURE};
use notarium::formats::referrer::{BUNDLE_CONTENT_ANNOTATION, EMPTY_JSON, OCI_EMPTY, ReferrersIndex, referrers_tag};
use notarium::formats::signature_manifest::{Descriptor, OCI_INDEX, OCI_MANIFEST, SignatureManifest};
use notarium::keys::PublicKey;
use notarium::oci::{DistributionRegistry, ReferrerLayout, Registry as _, Repository};
use notarium::store::{LocalSubjectLocks, SubjectLocks};
use support::{Registry, RegistryKind, push_image};

const REPO: &str = "demo/app";

/// A registry holding one image, and that image as a referrer's subject.
struct Subject {
    registry: Registry,
    digest: Digest,
    size: u64,
}

impl Subject {
    fn push(kind: RegistryKind, content: &str) -> Self {
        let registry = Registry::start_kind(kind);
        let digest = Digest::parse(&push_image(&registry, REPO, "v1", content)).unwrap();
        let size = registry.manifest(REPO, digest.as_str()).unwrap().len() as u64;
        Self { registry, digest, size }
    }

    fn repo(&self) -> Repository {
        Repository { registry: self.registry.host.clone(), name: REPO.to_owned() }
    }

    fn client(&self) -> Arc<DistributionRegistry> {
        Arc::new(DistributionRegistry::with_insecure([self.registry.host.clone()]))
    }

    /// A referrer manifest holding a message-signature bundle with a dummy `signature`, and the bundle.
    fn referrer(&self, signature: &str) -> (Vec<u8>, Vec<u8>) {
        let pem = std::fs::read_to_string(Path::new(support::ROOT).join("tests/fixtures/other-p256.pub")).unwrap();
        let bundle = Bundle::message_signature(&PublicKey::from_pem(&pem).unwrap(), &self.digest, signature.into());
        let bundle_json = bundle.to_json();
        let image = Descriptor::new(OCI_MANIFEST, &self.digest, self.size);
        let manifest = SignatureManifest::for_bundle(image, &bundle_json, bundle.content_annotation(), None);
        (manifest.to_json(), bundle_json)
    }

    /// The fallback index as the registry serves it; its raw bytes must parse.
    fn fallback_index(&self) -> ReferrersIndex {
        let raw = self.registry.manifest(REPO, &referrers_tag(&self.digest)).expect("the fallback tag exists");
        ReferrersIndex::parse(&raw).unwrap()
    }
}

async fn attach(store: &ReferrerLayout, subject: &Subject, signature: &str) -> Digest {
    let (manifest, bundle) = subject.referrer(signature);
    let attached = store.attach(&subject.repo(), &subject.digest, &manifest, &[&bundle, EMPTY_JSON]).await.unwrap();
    let kind = subject.registry.kind;
    assert_eq!(attached.via_referrers_api, kind.has_referrers_api(), "{kind:?}");
    assert_eq!(attached.manifest_digest, Digest::of(&manifest));
    attached.manifest_digest
}

fn digests(entries: &[Descriptor]) -> BTreeSet<String> {
    entries.iter().map(|d| d.digest.clone()).collect()
}

#[test]
fn an_attached_referrer_is_stored_by_digest_and_listed_once() {
    RegistryKind::ALL.into_iter().for_each(attached_once);
}

/// Through the fallback tag without a referrers API, through the API (and no fallback tag) with one.
fn attached_once(kind: RegistryKind) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let subject = Subject::push(kind, "one referrer");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = ReferrerLayout::new(subject.client(), Arc::new(LocalSubjectLocks::default()));

    let digest = runtime.block_on(attach(&store, &subject, "first"));
    let (manifest, _) = subject.referrer("first");
    assert_eq!(subject.registry.manifest(REPO, digest.as_str()).unwrap(), manifest, "stored byte for byte");
    let listed = runtime.block_on(store.list(&subject.repo(), &subject.digest, 64)).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].digest, digest.as_str());
    if kind.has_referrers_api() {
        // go-containerregistry lists the config's media type and no annotations, whatever the manifest says.
        assert_eq!(listed[0].artifact_type.as_deref(), Some(OCI_EMPTY));
        assert!(!subject.registry.has_fallback_tag(REPO, subject.digest.as_str()), "no needless fallback tag");
        let listed_by_api = subject.registry.referrers(REPO, subject.digest.as_str()).unwrap();
        assert_eq!(listed_by_api["manifests"][0]["digest"], digest.as_str());
        let requests = subject.registry.requests();
        assert!(requests.iter().any(|r| r.starts_with("GET /v2/demo/app/referrers/")), "{requests:?}");
        assert!(!requests.iter().any(|r| r.starts_with("PUT /v2/demo/app/manifests/sha256-")), "{requests:?}");
    } else {
        assert_eq!(listed[0].artifact_type.as_deref(), Some(BUNDLE_V0_3));
        assert_eq!(listed[0].annotation(BUNDLE_CONTENT_ANNOTATION), Some(CONTENT_MESSAGE_SIGNATURE));
    }

    runtime.block_on(attach(&store, &subject, "first"));
    let again = runtime.block_on(store.list(&subject.repo(), &subject.digest, 64)).unwrap();
    assert_eq!(again, listed, "attaching again changes nothing");
    if !kind.has_referrers_api() {
        assert_eq!(subject.fallback_index().manifests, listed);
    }
}

#[test]
fn twenty_concurrent_attaches_from_two_stores_are_all_listed() {
    RegistryKind::ALL.into_iter().for_each(twenty_concurrent_attaches);
}

/// All in the fallback index without a referrers API; all listed by the API, and no fallback tag, with one.
fn twenty_concurrent_attaches(kind: RegistryKind) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let subject = Arc::new(Subject::push(kind, "twenty referrers"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    // Two stores, as two replicas: their writes race in the registry, and they share one lock backend as
    // replicas share their database (each store batches its own waiting attaches).
    let locks: Arc<dyn SubjectLocks> = Arc::new(LocalSubjectLocks::default());
    let store = || Arc::new(ReferrerLayout::new(subject.client(), locks.clone()));
    let stores = [store(), store()];

    let attached: BTreeSet<String> = runtime.block_on(async {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (store, subject) = (stores[i % 2].clone(), subject.clone());
                tokio::spawn(async move { attach(&store, &subject, &format!("signature {i}")).await.to_string() })
            })
            .collect();
        futures_util::future::try_join_all(tasks).await.unwrap().into_iter().collect()
    });
    assert_eq!(attached.len(), 20);

    if kind.has_referrers_api() {
        assert!(!subject.registry.has_fallback_tag(REPO, subject.digest.as_str()), "no needless fallback tag");
    } else {
        let index = subject.fallback_index();
        assert_eq!(index.manifests.len(), 20, "one entry per referrer, no duplicates");
        assert_eq!(digests(&index.manifests), attached);
    }
    let listed = runtime.block_on(stores[0].list(&subject.repo(), &subject.digest, 64)).unwrap();
    assert_eq!(listed.len(), 20, "no duplicates");
    assert_eq!(digests(&listed), attached);
}

#[test]
fn an_entry_cosign_wrote_in_the_fallback_index_is_kept_as_it_was() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Only a registry without a referrers API has its referrers in a fallback tag.
    let subject = Subject::push(RegistryKind::Distribution, "foreign referrer");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = subject.client();
    let repo = subject.repo();
    // cosign's own referrer manifest, listed by hand the way cosign 2.5 lists it (sigstore/cosign#4641).
    let (cosign_manifest, cosign_bundle) = subject.referrer("cosign");
    let cosign_entry = serde_json::json!({
        "mediaType": OCI_MANIFEST,
        "size": cosign_manifest.len(),
        "digest": Digest::of(&cosign_manifest).as_str(),
        "artifactType": OCI_EMPTY,
    });
    let cosign_index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [cosign_entry]});
    runtime.block_on(async {
        client.put_blob(&repo, &cosign_bundle).await.unwrap();
        client.put_blob(&repo, EMPTY_JSON).await.unwrap();
        let by_digest = Digest::of(&cosign_manifest);
        client.put_manifest(&repo, by_digest.as_str(), OCI_MANIFEST, &cosign_manifest).await.unwrap();
        let tag = referrers_tag(&subject.digest);
        client.put_manifest(&repo, &tag, OCI_INDEX, cosign_index.to_string().as_bytes()).await.unwrap();
    });

    let store = ReferrerLayout::new(client, Arc::new(LocalSubjectLocks::default()));
    let ours = runtime.block_on(attach(&store, &subject, "ours"));

    let raw = subject.registry.manifest(REPO, &referrers_tag(&subject.digest)).unwrap();
    let served: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(served["manifests"][0], cosign_entry, "cosign's entry is kept field for field");
    assert_eq!(served["manifests"][1]["digest"], ours.as_str());
    let listed = runtime.block_on(store.list(&repo, &subject.digest, 64)).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].artifact_type.as_deref(), Some(OCI_EMPTY));
    assert_eq!(listed[0].annotations, None);
}

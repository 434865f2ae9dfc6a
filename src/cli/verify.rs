//! `notarium verify`: reads the signatures on an image straight from its registry and checks them
//! against a public key, with no server and no database.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use super::{CliError, Output};
use zeroize::Zeroizing;

use crate::config::EvidenceLimits;
use crate::config::{Config, split_host_list};
use crate::formats::{ImageReference, canonical_registry};
use crate::keys::KeyRing;
use crate::keys::PublicKey;
use crate::oci::ReferrerLayout;
use crate::oci::TagLayout;
use crate::oci::credentials::{self, CredentialMap};
use crate::oci::{DistributionRegistry, EgressRules, OciError, Registry, RegistryCredentials, RegistryLimits};
use crate::policy::{Authority, PolicySet};
use crate::service::{
    CrlFetcher, Decision, ServiceError, Sources, check_policy_keys, check_signatures, repository_of, verify_image,
};
use crate::store::{LocalSubjectLocks, SubjectLocks};

/// How this command reaches registries: plain HTTP to `insecure`, the `[registries]` section of `config`,
/// and the credentials of `--registry-username` for the image's registry.
pub(super) struct RegistryAccess {
    pub insecure: Vec<String>,
    pub config: Option<PathBuf>,
    pub username: Option<String>,
}

pub(super) async fn verify(
    image: &str,
    public_key: &Path,
    access: &RegistryAccess,
    output: Output,
) -> Result<(), CliError> {
    let key = read_public_key(public_key)?;
    let reference = ImageReference::parse(image).map_err(|e| CliError::Usage(e.to_string()))?;
    let config = load_config(access.config.as_deref())?;
    let registry = Arc::new(local_registry(config.as_ref(), access, &reference.registry)?);
    let store = TagLayout::new(registry.clone(), reading_only());
    let repo = repository_of(&reference);
    let tag_or_digest = reference
        .digest
        .as_ref()
        .map(ToString::to_string)
        .or(reference.tag.clone())
        .expect("a reference has a tag or a digest");
    let manifest = crate::oci::Registry::get_manifest(registry.as_ref(), &repo, &tag_or_digest)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| CliError::Refused(ServiceError::ImageNotFound(image.to_owned()).to_string()))?;
    let (_, stored) = store.read(&repo, &manifest.digest, &EvidenceLimits::default()).await.map_err(unavailable)?;
    let checked = check_signatures(&stored.items, &manifest.digest, &key);
    let valid = checked.iter().filter(|c| c.result.is_ok()).count();
    let signatures: Vec<_> = checked
        .iter()
        .map(|c| json!({"identity": c.identity, "valid": c.result.is_ok(), "reason": c.result.as_ref().err()}))
        .collect();
    let result = json!({"digest": manifest.digest.to_string(), "verified": valid > 0, "signatures": signatures,
                        "skipped": stored.skipped});
    output.print(&result, || {
        let line = |c: &crate::service::CheckedSignature| {
            let identity = c.identity.as_deref().unwrap_or("?");
            match &c.result {
                Ok(()) => format!("valid   {identity}"),
                Err(reason) => format!("invalid {identity}: {reason}"),
            }
        };
        let skipped = stored.skipped.iter().map(|why| format!("skipped {why}"));
        checked.iter().map(line).chain(skipped).collect::<Vec<_>>().join("\n")
    });
    if valid == 0 {
        return Err(CliError::Refused(format!(
            "no valid signature on {image} ({}) among {} found",
            manifest.digest,
            checked.len()
        )));
    }
    Ok(())
}

/// Read by `notarium serve` too, as a comma list.
const INSECURE_ENV: &str = "NOTARIUM_INSECURE_REGISTRIES";

/// The registries this command reaches over plain HTTP, in canonical form: every `--insecure-registry`
/// and every host of `NOTARIUM_INSECURE_REGISTRIES`.
pub(super) fn insecure_registries(flags: &[String]) -> Result<Vec<String>, CliError> {
    let from_env = std::env::var(INSECURE_ENV).unwrap_or_default();
    let named = flags.iter().map(|host| ("--insecure-registry", host.as_str()));
    named
        .chain(split_host_list(&from_env).map(|host| (INSECURE_ENV, host)))
        .map(|(source, host)| canonical_registry(host).map_err(|e| CliError::Usage(format!("{source}: {e}"))))
        .collect()
}

/// The configuration `--config` names, if any.
fn load_config(path: Option<&Path>) -> Result<Option<Config>, CliError> {
    let Some(path) = path else { return Ok(None) };
    let env: HashMap<String, String> = std::env::vars().collect();
    Config::load(Some(path), &env).map(Some).map_err(|e| CliError::Usage(e.to_string()))
}

/// The registry client of this command: the egress rules of `[registries]`, except that the person at the
/// keyboard may name hosts on internal addresses; plain HTTP to `insecure`; the credentials of
/// `--registry-username` for `image_registry`, then those of `[registries.auth]` and the auth files.
fn local_registry(
    config: Option<&Config>,
    access: &RegistryAccess,
    image_registry: &str,
) -> Result<DistributionRegistry, CliError> {
    let registries = config.map(|c| c.registries.clone()).unwrap_or_default();
    let explicit = match &access.username {
        Some(username) => {
            let password = password_from_stdin()?;
            CredentialMap::from([(
                image_registry.to_owned(),
                RegistryCredentials { username: username.clone(), password },
            )])
        }
        None => CredentialMap::new(),
    };
    let wanted = if explicit.is_empty() { vec![image_registry.to_owned()] } else { Vec::new() };
    let configured = credentials::configured(&registries, &wanted).map_err(|e| CliError::Usage(e.to_string()))?;
    let rules = local_egress_rules(config, access);
    let limits = RegistryLimits::from_config(&registries);
    Ok(DistributionRegistry::new(rules, limits, credentials::merged([explicit, configured])))
}

/// The egress rules of `[registries]`, except that the person at the keyboard may name hosts on internal
/// addresses (registries, and CRL distribution points).
fn local_egress_rules(config: Option<&Config>, access: &RegistryAccess) -> EgressRules {
    let registries = config.map(|c| c.registries.clone()).unwrap_or_default();
    EgressRules::for_local_use(&registries, access.insecure.clone())
}

/// The `--key` PEM file, within [`crate::local_file::SMALL_FILE_BYTES`].
fn read_public_key(path: &Path) -> Result<PublicKey, CliError> {
    let pem = crate::local_file::read_text_capped(path, crate::local_file::SMALL_FILE_BYTES)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    PublicKey::from_pem(&pem).map_err(|e| CliError::Usage(e.to_string()))
}

/// The most of stdin `--registry-password-stdin` reads: a password or token, not a file.
const MAX_PASSWORD_BYTES: u64 = 16 * 1024;

/// The first line of stdin, read within [`MAX_PASSWORD_BYTES`]; never echoed.
fn password_from_stdin() -> Result<Zeroizing<String>, CliError> {
    let mut password = Zeroizing::new(String::new());
    std::io::stdin()
        .take(MAX_PASSWORD_BYTES)
        .read_to_string(&mut password)
        .map_err(|e| CliError::Usage(format!("--registry-password-stdin: cannot read stdin: {}", e.kind())))?;
    let line_end = password.find(['\r', '\n']).unwrap_or(password.len());
    password.truncate(line_end);
    if password.is_empty() {
        return Err(CliError::Usage("--registry-password-stdin: stdin holds no password".into()));
    }
    Ok(password)
}

/// The registry failure for the local user, with the low-level reason a server would only log.
fn unavailable(e: OciError) -> CliError {
    match e {
        OciError::TlsFailed { registry, reason } => CliError::Unavailable(format!(
            "registry {registry} did not answer over TLS ({reason}); this command speaks plain HTTP only to \
             registries given with --insecure-registry {registry} or listed in {INSECURE_ENV}"
        )),
        OciError::Unreachable { registry, reason } => {
            CliError::Unavailable(format!("registry {registry} could not be reached: {reason}"))
        }
        OciError::Unauthorized { ref registry, .. } => {
            let registry = registry.clone();
            CliError::Unavailable(format!(
                "{e}; give credentials with --registry-username USER --registry-password-stdin, in \
                 [registries.auth.\"{registry}\"] of --config, or in Docker's config.json (docker login {registry})"
            ))
        }
        other => CliError::Unavailable(other.to_string()),
    }
}

/// `notarium verify IMAGE --policy FILE`: the policy engine of `POST /v1/verify`, with no server or
/// database; exit code 1 when the policy denies.
pub(super) async fn verify_policy(
    image: &str,
    policy_file: &Path,
    access: &RegistryAccess,
    output: Output,
) -> Result<(), CliError> {
    let (policies, _) = PolicySet::load_file(policy_file).map_err(|e| CliError::Usage(e.to_string()))?;
    let reference = ImageReference::parse(image).map_err(|e| CliError::Usage(e.to_string()))?;
    let named = named_keys(&policies);
    if access.config.is_none() && !named.is_empty() {
        return Err(config_needed(policy_file, &named));
    }
    let config = load_config(access.config.as_deref())?;
    let keys = match (&config, access.config.as_deref()) {
        (Some(config), Some(path)) => {
            let keys = super::keyring::load_public_keys(config).await?;
            check_keys_defined(&keys, &named, policy_file, path)?;
            keys
        }
        _ => KeyRing::default(),
    };
    let registry: Arc<dyn Registry> = Arc::new(local_registry(config.as_ref(), access, &reference.registry)?);
    let (signatures, referrers) =
        (TagLayout::new(registry.clone(), reading_only()), ReferrerLayout::new(registry.clone(), reading_only()));
    let crl_fetcher = CrlFetcher::new(local_egress_rules(config.as_ref(), access));
    let sigstore = config.as_ref().map(|c| c.sigstore.clone()).unwrap_or_default();
    let trusted_roots = Arc::new(sigstore.load().map_err(|e| CliError::Usage(e.to_string()))?);
    policies.check_trusted_roots(&trusted_roots.names()).map_err(|e| CliError::Usage(e.to_string()))?;
    let limits = config.map(|c| c.policies.evidence).unwrap_or_default();
    let sources = Sources {
        registry: &registry,
        keys: &keys,
        signatures: &signatures,
        referrers: &referrers,
        limits: &limits,
        trusted_roots: &trusted_roots,
        crl_fetcher: Some(&crl_fetcher),
    };
    check_policy_keys(&keys, &policies).await.map_err(|e| CliError::Usage(e.to_string()))?;
    let decision = verify_image(&sources, image, Arc::new(policies)).await.map_err(|e| match e {
        ServiceError::Registry(e) => unavailable(e),
        ServiceError::Reference(e) => CliError::Usage(e.to_string()),
        other => CliError::Refused(other.to_string()),
    })?;
    print_decision(&decision, output);
    if !decision.allowed {
        return Err(CliError::Refused(format!("{image} ({}) is denied", decision.digest)));
    }
    Ok(())
}

/// The key ids the policies' `key:` authorities name.
fn named_keys(policies: &PolicySet) -> BTreeSet<String> {
    let authorities = policies.policies.iter().flat_map(|p| &p.authorities);
    authorities
        .filter_map(|a| match a {
            Authority::Key(reference) => Some(reference.id.clone()),
            Authority::PublicKey { .. } | Authority::Keyless(_) | Authority::Notation(_) => None,
        })
        .collect()
}

fn quoted(ids: &BTreeSet<String>) -> String {
    ids.iter().map(|id| format!("{id:?}")).collect::<Vec<_>>().join(", ")
}

fn config_needed(policy_file: &Path, named: &BTreeSet<String>) -> CliError {
    CliError::Usage(format!(
        "policy {} names configured keys ({}) in `key:` authorities: pass --config FILE (or set \
         NOTARIUM_CONFIG) whose [[keys]] define them, or write them as `public_key:` authorities",
        policy_file.display(),
        quoted(named)
    ))
}

fn check_keys_defined(
    keys: &KeyRing,
    named: &BTreeSet<String>,
    policy_file: &Path,
    config: &Path,
) -> Result<(), CliError> {
    let missing: BTreeSet<String> = named.iter().filter(|id| keys.get(id).is_err()).cloned().collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "policy {} names keys ({}) that {} does not define in [[keys]]",
        policy_file.display(),
        quoted(&missing),
        config.display()
    )))
}

fn print_decision(d: &Decision, output: Output) {
    output.print(&serde_json::to_value(d).expect("a decision serializes"), || {
        let verdict = if d.allowed { "allowed" } else { "denied" };
        let policy = d.policy.as_deref().unwrap_or("(none: default)");
        let reasons = d.reasons.iter().map(|r| format!("\n  {r}"));
        let skipped = d.skipped.iter().map(|s| format!("\n  skipped {s}"));
        format!("{verdict} {} under policy {policy}{}", d.digest, reasons.chain(skipped).collect::<String>())
    });
}

/// `notarium policy check DIR`: every policy file loads and compiles, and every trusted root a keyless
/// authority names is configured; prints what governs which images.
pub(super) fn check_policies(dir: &Path, config: Option<&Path>, output: Output) -> Result<(), CliError> {
    let set = PolicySet::load_dir(dir).map_err(|e| CliError::Refused(e.to_string()))?;
    let sigstore = load_config(config)?.map(|c| c.sigstore).unwrap_or_default();
    set.check_trusted_roots(&sigstore.names()).map_err(|e| CliError::Refused(e.to_string()))?;
    let mode = |p: &crate::policy::Policy| if p.mode == crate::policy::Mode::Warn { "warn" } else { "enforce" };
    let policies: Vec<_> = set
        .policies
        .iter()
        .map(|p| {
            json!({"name": p.name, "mode": p.mode, "threshold": p.threshold, "authorities": p.authorities.len(),
                   "images": p.images, "version": p.version})
        })
        .collect();
    output.print(&json!({"policies": policies, "default": set.default}), || {
        let lines = set.policies.iter().map(|p| {
            let images = p.images.join(", ");
            format!("{} ({}, {} of {} authorities): {images}\n", p.name, mode(p), p.threshold, p.authorities.len())
        });
        format!(
            "{}{} policies; images no policy matches: {:?}",
            lines.collect::<String>(),
            set.policies.len(),
            set.default
        )
    });
    Ok(())
}

/// Subject locks for a verify that only reads: it never writes a tag, so in-process ones do.
fn reading_only() -> Arc<dyn SubjectLocks> {
    Arc::new(LocalSubjectLocks::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_key_file_is_refused_unread_naming_it() {
        let (_dir, path) = crate::local_file::sparse_file("key.pub", crate::local_file::SMALL_FILE_BYTES + 1);
        let Err(CliError::Usage(message)) = read_public_key(&path) else { panic!("an oversized key was read") };
        assert!(
            message.contains(&path.display().to_string()) && message.contains("larger than the limit"),
            "{message}"
        );
    }
}

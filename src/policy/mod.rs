//! Trust policies: `policies/*.yaml` parsed, validated and compiled (CEL conditions at load), the choice of
//! the policy that governs an image, and the engine that decides (`engine.rs`, pure).
//!
//! Owns: the policy file format and its error messages (file, line, field), and the decision rules. Must not
//! touch: registries, key backends or the register (`service::verify` gathers evidence and records).

mod condition;
pub mod engine;
pub mod notation;

use std::path::Path;

use serde::Deserialize;

use crate::formats::{Digest, ImageReference, canonical_pattern};
use crate::glob::glob_matches;
use crate::keys::{KeyRef, PublicKey};

pub use condition::{Condition, ConditionOutcome};
pub use notation::{Notation, VerificationLevel};

/// A larger policy file is refused unread (and its fingerprint too): policies are hand-written YAML.
pub const MAX_POLICY_FILE_BYTES: u64 = crate::local_file::MIB;

/// Why a policy file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policies from {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{file}{}: {reason}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid { file: String, line: Option<usize>, reason: String },
}

/// What an image no policy matches gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    #[default]
    Deny,
    Allow,
}

/// `enforce` denies what fails; `warn` allows it and says why it would have been denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Warn,
}

/// Who is allowed to sign: a configured key (any version, or one), a public key given inline, a Sigstore
/// keyless identity (a Fulcio certificate's OIDC issuer and subject), or Notary Project signers (certificates
/// chaining to trust stores, with trusted subject DNs).
#[derive(Debug, Clone)]
pub enum Authority {
    Key(KeyRef),
    PublicKey { label: String, key: PublicKey },
    Keyless(Keyless),
    Notation(Notation),
}

impl Authority {
    /// How reasons name it: `prod@2`, `prod`, `public_key #N`, or `keyless SUBJECT from ISSUER`.
    pub fn label(&self) -> String {
        match self {
            Self::Key(KeyRef { id, version: Some(v) }) => format!("{id}@{v}"),
            Self::Key(KeyRef { id, version: None }) => id.clone(),
            Self::PublicKey { label, .. } => label.clone(),
            Self::Keyless(keyless) => keyless.label(),
            Self::Notation(notation) => notation.label(),
        }
    }

    /// True for a `notation:` authority at level `skip`: it verifies nothing and never counts.
    pub fn never_counts(&self) -> bool {
        matches!(self, Self::Notation(n) if n.level == VerificationLevel::Skip)
    }
}

/// A keyless authority: certificates from a Fulcio of a trusted root (the one named, or any configured)
/// whose OIDC issuer is `issuer` and whose subject (SAN) is, or wholly matches, `subject`.
#[derive(Debug, Clone)]
pub struct Keyless {
    pub issuer: String,
    pub subject: SubjectMatch,
    /// The `[sigstore] trusted_roots` name this authority trusts; `None`: any of them.
    pub trusted_root: Option<String>,
    /// The line of `trusted_root:` in the file, for the error when no configured root has that name.
    pub trusted_root_line: Option<usize>,
    /// CEL over `certificate` (its subject, issuer and Fulcio extensions): every one must hold.
    pub conditions: std::sync::Arc<[Condition]>,
}

/// How a keyless authority matches a certificate's subject.
#[derive(Debug, Clone)]
pub enum SubjectMatch {
    Exact(String),
    /// Matched against the whole subject (anchored at both ends).
    Regex(regex::Regex),
}

impl SubjectMatch {
    pub fn matches(&self, subject: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == subject,
            Self::Regex(re) => re.is_match(subject),
        }
    }
}

impl Keyless {
    pub fn label(&self) -> String {
        match &self.subject {
            SubjectMatch::Exact(s) => format!("keyless {s} from {}", self.issuer),
            SubjectMatch::Regex(re) => format!("keyless /{}/ from {}", unanchored(re.as_str()), self.issuer),
        }
    }

    /// True when a certificate naming `issuer` and `subject` is this authority's.
    pub fn names(&self, issuer: &str, subject: &str) -> bool {
        self.issuer == issuer && self.subject.matches(subject)
    }

    /// True when a signature verified under the trusted root called `root` may count for this authority.
    pub fn trusts_root(&self, root: &str) -> bool {
        self.trusted_root.as_deref().is_none_or(|name| name == root)
    }
}

/// The regex as written, without the anchors [`compile_subject_regex`] added.
fn unanchored(re: &str) -> &str {
    re.strip_prefix("^(?:").and_then(|r| r.strip_suffix(")$")).unwrap_or(re)
}

fn compile_subject_regex(re: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{re})$"))
        .map_err(|e| format!("subject_regex is not a valid regular expression: {e}"))
}

/// Which signatures count for an image besides the digest they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityMode {
    /// The signature names the image's repository (any tag, or none).
    #[default]
    Repository,
    /// The signature names the repository and the tag the image was asked for (no tag for a digest).
    Exact,
}

/// An attestation the image must carry: its predicate type and conditions on its predicate.
#[derive(Debug)]
pub struct RequiredAttestation {
    pub predicate_type: String,
    pub conditions: Vec<Condition>,
}

/// One compiled policy.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub file: String,
    /// SHA-256 of the file's text: which version of the policy decided.
    pub version: String,
    /// The file's text, whose SHA-256 is `version` (logged in `policy-loaded` entries for evidence packs).
    pub text: String,
    pub images: Vec<String>,
    pub authorities: Vec<Authority>,
    /// The line of each authority in its file, for errors found after load.
    pub authority_lines: Vec<Option<usize>>,
    /// For each authority, whether its signatures count only with a verified transparency-log entry or
    /// timestamp (`require_tlog: true`; keyless signatures always need one).
    pub require_tlog: Vec<bool>,
    /// How many distinct authorities must have signed (k of n).
    pub threshold: usize,
    pub attestations: Vec<RequiredAttestation>,
    pub mode: Mode,
    pub identity: IdentityMode,
    /// Globs of other repositories whose signatures also count (promotion by copy).
    pub identities: Vec<String>,
    /// Deny (in `enforce` mode) an image named by tag only.
    pub require_digest: bool,
    /// SHA-256 of the compiled policy's content: what a cached decision was made under.
    pub content_digest: Digest,
}

impl Policy {
    /// The `notation:` authorities, in file order.
    pub fn notation(&self) -> impl Iterator<Item = &Notation> {
        self.authorities.iter().filter_map(|a| match a {
            Authority::Notation(notation) => Some(notation),
            _ => None,
        })
    }

    /// The keyless authorities, in file order.
    pub fn keyless(&self) -> impl Iterator<Item = &Keyless> {
        self.authorities.iter().filter_map(|a| match a {
            Authority::Keyless(keyless) => Some(keyless),
            _ => None,
        })
    }

    pub fn matches(&self, image: &ImageReference) -> bool {
        let name = image.repository_name();
        self.images.iter().any(|pattern| glob_matches(pattern, &name))
    }
}

/// Every policy in force, in file-name order then file order: the first that matches an image governs it.
#[derive(Debug, Default)]
pub struct PolicySet {
    pub policies: Vec<Policy>,
    pub default: Fallback,
}

impl PolicySet {
    pub fn governing(&self, image: &ImageReference) -> Option<&Policy> {
        self.policies.iter().find(|p| p.matches(image))
    }

    /// The policy called `name`, whatever images it matches.
    pub fn named(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// Loads every `*.yaml` / `*.yml` in `dir`; a missing directory is an empty set (deny everything).
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let mut set = Self::default();
        let mut defaults = Vec::new();
        for file in policy_files(dir)? {
            let (file_set, explicit) = Self::load_file(&file)?;
            if let Some(d) = explicit {
                defaults.push((file.display().to_string(), d));
            }
            set.policies.extend(file_set.policies);
        }
        set.default = single_default(&defaults)?;
        set.check_unique_names()?;
        Ok(set)
    }

    /// The set `files` (name, text) make, as [`PolicySet::load_dir`] would load a folder holding them: files in
    /// name order, one `default`, unique names; errors name the file (as given) and line.
    pub fn from_texts(files: &[(String, String)]) -> Result<Self, PolicyError> {
        let mut sorted: Vec<&(String, String)> = files.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut set = Self::default();
        let mut defaults = Vec::new();
        for (name, text) in sorted {
            let (file_set, explicit) = Self::parse(name, text)?;
            if let Some(d) = explicit {
                defaults.push((name.clone(), d));
            }
            set.policies.extend(file_set.policies);
        }
        set.default = single_default(&defaults)?;
        set.check_unique_names()?;
        Ok(set)
    }

    /// One file, and the `default` it sets explicitly.
    pub fn load_file(path: &Path) -> Result<(Self, Option<Fallback>), PolicyError> {
        let text = crate::local_file::read_text_capped(path, MAX_POLICY_FILE_BYTES)
            .map_err(|e| PolicyError::Read { path: path.display().to_string(), reason: e.reason() })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and compiles one file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<(Self, Option<Fallback>), PolicyError> {
        let raw: RawFile = yaml_serde::from_str(text).map_err(|e| PolicyError::Invalid {
            file: file.to_owned(),
            line: e.location().map(|l| l.line()),
            reason: e.to_string(),
        })?;
        let policies = raw.policies.into_iter().map(|p| compile(file, text, p)).collect::<Result<Vec<_>, _>>()?;
        let set = Self { policies, default: raw.default.unwrap_or_default() };
        set.check_unique_names()?;
        Ok((set, raw.default))
    }

    /// Refuses a keyless authority that names a trusted root not among `known` (the `[sigstore]
    /// trusted_roots` names), naming file, line and the known names.
    pub fn check_trusted_roots(&self, known: &[&str]) -> Result<(), PolicyError> {
        for policy in &self.policies {
            for (authority, line) in policy.authorities.iter().zip(&policy.authority_lines) {
                let Authority::Keyless(keyless) = authority else { continue };
                let Some(name) = keyless.trusted_root.as_deref().filter(|n| !known.contains(n)) else { continue };
                return Err(PolicyError::Invalid {
                    file: policy.file.clone(),
                    line: keyless.trusted_root_line.or(*line),
                    reason: format!(
                        "policy {:?}, authorities: trusted_root {name:?} is not a configured trusted root \
                         ([sigstore] trusted_roots: {})",
                        policy.name,
                        known.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    fn check_unique_names(&self) -> Result<(), PolicyError> {
        let mut seen = std::collections::HashSet::new();
        match self.policies.iter().find(|p| !seen.insert(p.name.as_str())) {
            Some(p) => Err(PolicyError::Invalid {
                file: p.file.clone(),
                line: None,
                reason: format!("policies.name: {:?} is used by two policies", p.name),
            }),
            None => Ok(()),
        }
    }
}

/// A digest of every policy file's name and text in `dir`: it changes when a file is added, edited or removed.
pub fn fingerprint(dir: &Path) -> Result<Digest, PolicyError> {
    let mut all = Vec::new();
    for file in policy_files(dir)? {
        let text = crate::local_file::read_capped(&file, MAX_POLICY_FILE_BYTES)
            .map_err(|e| PolicyError::Read { path: file.display().to_string(), reason: e.reason() })?;
        all.extend_from_slice(Digest::of(file.to_string_lossy().as_bytes()).as_str().as_bytes());
        all.extend_from_slice(Digest::of(&text).as_str().as_bytes());
    }
    Ok(Digest::of(&all))
}

/// The `*.yaml` / `*.yml` files of `dir` in name order; none when `dir` does not exist.
fn policy_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, PolicyError> {
    let read_error = |e: std::io::Error| PolicyError::Read { path: dir.display().to_string(), reason: e.to_string() };
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>().map_err(read_error)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(read_error(e)),
    };
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    Ok(files)
}

fn single_default(defaults: &[(String, Fallback)]) -> Result<Fallback, PolicyError> {
    match defaults {
        [] => Ok(Fallback::Deny),
        [(_, first), rest @ ..] => match rest.iter().find(|(_, d)| d != first) {
            Some((file, _)) => Err(PolicyError::Invalid {
                file: file.clone(),
                line: None,
                reason: format!("default: disagrees with {}'s", defaults[0].0),
            }),
            None => Ok(*first),
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    default: Option<Fallback>,
    #[serde(default)]
    policies: Vec<RawPolicy>,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    images: Vec<String>,
    #[serde(default)]
    authorities: Vec<RawAuthority>,
    threshold: Option<usize>,
    #[serde(default)]
    attestations: Vec<RawAttestation>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    identity: IdentityMode,
    #[serde(default)]
    identities: Vec<String>,
    #[serde(default)]
    require_digest: bool,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawAuthority {
    key: Option<String>,
    public_key: Option<String>,
    keyless: Option<RawKeyless>,
    notation: Option<notation::RawNotation>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    require_tlog: bool,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawKeyless {
    issuer: Option<String>,
    subject: Option<String>,
    subject_regex: Option<String>,
    trusted_root: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    conditions: Vec<String>,
}

impl RawAuthority {
    /// The text that finds this authority's line: the key reference, the first base64 line of the PEM, or
    /// the keyless subject (else issuer).
    fn needle(&self) -> String {
        if let Some(notation) = &self.notation {
            return notation.needle();
        }
        match (&self.key, &self.public_key, &self.keyless) {
            (Some(key), _, _) => format!("key: {key}"),
            (None, Some(pem), _) => {
                pem.lines().find(|l| !l.trim().is_empty() && !l.contains("-----")).unwrap_or(pem).into()
            }
            (None, None, Some(k)) => match (&k.subject, &k.subject_regex, &k.issuer) {
                (Some(subject), _, _) => format!("subject: {subject}"),
                (None, Some(re), _) => format!("subject_regex: {re}"),
                (None, None, Some(issuer)) => format!("issuer: {issuer}"),
                (None, None, None) => "keyless".into(),
            },
            (None, None, None) => "authorities".into(),
        }
    }
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawAttestation {
    predicate_type: String,
    #[serde(default)]
    conditions: Vec<String>,
}

fn compile(file: &str, text: &str, raw: RawPolicy) -> Result<Policy, PolicyError> {
    let invalid = |needle: &str, field: &str, reason: String| PolicyError::Invalid {
        file: file.to_owned(),
        line: line_of(text, needle),
        reason: format!("policy {:?}, {field}: {reason}", raw.name),
    };
    if raw.images.is_empty() {
        return Err(invalid(&raw.name, "images", "list at least one image pattern".into()));
    }
    if raw.authorities.is_empty() {
        return Err(invalid(&raw.name, "authorities", "list at least one key, public_key, keyless or notation".into()));
    }
    let base = Path::new(file).parent().unwrap_or(Path::new(""));
    let authorities = raw
        .authorities
        .iter()
        .enumerate()
        .map(|(i, a)| authority(i, a, text, base).map_err(|(needle, reason)| invalid(&needle, "authorities", reason)))
        .collect::<Result<Vec<_>, _>>()?;
    check_distinct(&raw.authorities, &authorities)
        .map_err(|(needle, reason)| invalid(&needle, "authorities", reason))?;
    let threshold = raw.threshold.unwrap_or(1);
    if threshold == 0 || threshold > authorities.len() {
        let reason = format!("{threshold} is not between 1 and the {} authorities", authorities.len());
        return Err(invalid("threshold", "threshold", reason));
    }
    let counting = authorities.iter().filter(|a| !a.never_counts()).count();
    if threshold > counting {
        let reason = format!(
            "{threshold} cannot be met: only {counting} of the {} authorities can count (a notation authority at \
             level skip verifies nothing and never counts)",
            authorities.len()
        );
        return Err(invalid("threshold", "threshold", reason));
    }
    let attestations = raw
        .attestations
        .iter()
        .map(|a| {
            let conditions = a
                .conditions
                .iter()
                .map(|c| Condition::compile(c).map_err(|e| invalid(c, "attestations.conditions", e)))
                .collect::<Result<_, _>>()?;
            Ok(RequiredAttestation { predicate_type: a.predicate_type.clone(), conditions })
        })
        .collect::<Result<_, _>>()?;
    let authorities_for_digest = authorities.clone();
    Ok(Policy {
        name: raw.name.clone(),
        file: file.to_owned(),
        version: Digest::of(text.as_bytes()).to_string(),
        text: text.to_owned(),
        images: raw.images.iter().map(|p| canonical_pattern(p)).collect(),
        authority_lines: raw.authorities.iter().map(|a| line_of(text, &a.needle())).collect(),
        require_tlog: raw.authorities.iter().map(|a| a.require_tlog || a.keyless.is_some()).collect(),
        authorities,
        threshold,
        attestations,
        mode: raw.mode,
        identity: raw.identity,
        identities: raw.identities.iter().map(|p| canonical_pattern(p)).collect(),
        require_digest: raw.require_digest,
        content_digest: content_digest(&raw, &authorities_for_digest),
    })
}

/// The policy's content as it decides: its fields, and the certificates and CRLs its notation authorities
/// read at load (a trust-store or CRL file edited in place changes what was decided under).
fn content_digest(raw: &RawPolicy, authorities: &[Authority]) -> Digest {
    let mut content = serde_json::to_vec(raw).expect("a parsed policy serializes");
    for notation in authorities.iter().filter_map(|a| match a {
        Authority::Notation(n) => Some(n),
        _ => None,
    }) {
        content.extend_from_slice(notation.store_identity.as_str().as_bytes());
        for crl in &notation.crls {
            content.extend_from_slice(Digest::of(crl).as_str().as_bytes());
        }
    }
    Digest::of(&content)
}

/// Refuses two authorities that stand for the same key as far as the file itself shows: one id twice
/// (unless both pin different versions), or one public key twice. Keys that only the key ring can tell
/// apart are checked by [`overlapping_keys`] once it is known.
fn check_distinct(raw: &[RawAuthority], authorities: &[Authority]) -> Result<(), (String, String)> {
    for (j, later) in authorities.iter().enumerate() {
        for earlier in &authorities[..j] {
            if same_key(earlier, later) {
                return Err((raw[j].needle(), overlap_reason(earlier, later)));
            }
        }
    }
    Ok(())
}

fn same_key(a: &Authority, b: &Authority) -> bool {
    match (a, b) {
        (Authority::Key(a), Authority::Key(b)) => {
            a.id == b.id && (a.version.is_none() || b.version.is_none() || a.version == b.version)
        }
        (Authority::PublicKey { key: a, .. }, Authority::PublicKey { key: b, .. }) => a.spki_der() == b.spki_der(),
        (Authority::Notation(a), Authority::Notation(b)) => a.same_signers(b),
        (Authority::Keyless(a), Authority::Keyless(b)) => match (&a.subject, &b.subject) {
            (SubjectMatch::Exact(sa), SubjectMatch::Exact(sb)) => a.issuer == b.issuer && sa == sb,
            _ => false,
        },
        _ => false,
    }
}

fn overlap_reason(a: &Authority, b: &Authority) -> String {
    if let (Authority::Notation(_), Authority::Notation(_)) = (a, b) {
        return format!(
            "{} and {} trust the same stores and a common identity, and one signer counts once toward a threshold",
            a.label(),
            b.label()
        );
    }
    if let (Authority::Keyless(_), Authority::Keyless(_)) = (a, b) {
        return format!(
            "{} and {} stand for the same identity, and one identity counts once toward a threshold",
            a.label(),
            b.label()
        );
    }
    format!("{} and {} stand for the same key, and one key counts once toward a threshold", a.label(), b.label())
}

impl Policy {
    /// Two of this policy's authorities that stand for one public key, given each authority's keys as the
    /// key ring resolved them (`None` where a backend could not say): the error names file, line and both.
    pub fn overlapping_keys(&self, keys: &[Option<Vec<PublicKey>>]) -> Result<(), PolicyError> {
        for (j, later) in keys.iter().enumerate() {
            let Some(later) = later else { continue };
            for (i, earlier) in keys[..j].iter().enumerate() {
                let Some(earlier) = earlier else { continue };
                if later.iter().any(|k| earlier.iter().any(|e| e.spki_der() == k.spki_der())) {
                    return Err(PolicyError::Invalid {
                        file: self.file.clone(),
                        line: self.authority_lines[j],
                        reason: format!(
                            "policy {:?}, authorities: {}",
                            self.name,
                            overlap_reason(&self.authorities[i], &self.authorities[j])
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

impl Policy {
    /// An authority that stands for the register's checkpoint key `checkpoint_key` (by id, or by public key
    /// where `checkpoint_versions` and the authority's `keys` are known): that key signs checkpoints only, so a
    /// policy that trusted it would trust an image signed by no one allowed to sign images. The error names
    /// file, line and the authority.
    pub fn checkpoint_key_authority(
        &self,
        checkpoint_key: &str,
        checkpoint_versions: Option<&[PublicKey]>,
        keys: &[Option<Vec<PublicKey>>],
    ) -> Result<(), PolicyError> {
        for (j, authority) in self.authorities.iter().enumerate() {
            let by_id = matches!(authority, Authority::Key(r) if r.id == checkpoint_key);
            let by_key = matches!((checkpoint_versions, &keys[j]), (Some(reserved), Some(keys))
                if keys.iter().any(|k| reserved.iter().any(|r| r.spki_der() == k.spki_der())));
            if by_id || by_key {
                return Err(PolicyError::Invalid {
                    file: self.file.clone(),
                    line: self.authority_lines[j],
                    reason: format!(
                        "policy {:?}, authorities: {} is the register's checkpoint key ([log] key {checkpoint_key}), \
                         which signs checkpoints only and cannot vouch for images",
                        self.name,
                        authority.label()
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The authority at `index`, or the text to point at and why it is wrong.
fn authority(index: usize, raw: &RawAuthority, text: &str, base: &Path) -> Result<Authority, (String, String)> {
    if let Some(notation) = &raw.notation {
        if raw.key.is_some() || raw.public_key.is_some() || raw.keyless.is_some() {
            return Err((
                raw.needle(),
                format!("entry {} needs exactly one of key, public_key, keyless or notation", index + 1),
            ));
        }
        if raw.require_tlog {
            let reason = format!(
                "entry {}: require_tlog is for key authorities (a notation signature may carry an RFC 3161 timestamp under trust_stores.tsa)",
                index + 1
            );
            return Err((raw.needle(), reason));
        }
        return notation.compile(base).map(Authority::Notation).map_err(|reason| (raw.needle(), reason));
    }
    match (&raw.key, &raw.public_key, &raw.keyless) {
        (Some(key), None, None) => KeyRef::parse(key).map(Authority::Key).map_err(|e| (key.clone(), e.to_string())),
        (None, Some(pem), None) => PublicKey::from_pem(pem)
            .map(|key| Authority::PublicKey { label: format!("public_key #{}", index + 1), key })
            .map_err(|e| ("public_key".into(), e.to_string())),
        (None, None, Some(_)) if raw.require_tlog => Err((
            raw.needle(),
            format!(
                "entry {}: require_tlog is for key authorities (keyless signatures always need a log entry or timestamp)",
                index + 1
            ),
        )),
        (None, None, Some(keyless)) => {
            keyless_authority(keyless, text).map(Authority::Keyless).map_err(|reason| (raw.needle(), reason))
        }
        _ => Err((
            "authorities".into(),
            format!("entry {} needs exactly one of key, public_key, keyless or notation", index + 1),
        )),
    }
}

fn keyless_authority(raw: &RawKeyless, text: &str) -> Result<Keyless, String> {
    let issuer = match raw.issuer.as_deref().map(str::trim) {
        Some(issuer) if !issuer.is_empty() => issuer.to_owned(),
        _ => return Err("keyless.issuer is missing: name the OIDC issuer URL the certificate must carry".into()),
    };
    let subject = match (&raw.subject, &raw.subject_regex) {
        (Some(subject), None) if !subject.is_empty() => SubjectMatch::Exact(subject.clone()),
        (None, Some(re)) => SubjectMatch::Regex(compile_subject_regex(re)?),
        _ => return Err("keyless needs exactly one of subject or subject_regex".into()),
    };
    let conditions = raw
        .conditions
        .iter()
        .map(|c| {
            Condition::compile_over(c, &condition::CERTIFICATE_VARIABLES)
                .map_err(|e| format!("keyless.conditions {c:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?
        .into();
    let trusted_root_line = raw.trusted_root.as_ref().and_then(|n| line_of(text, &format!("trusted_root: {n}")));
    Ok(Keyless { issuer, subject, trusted_root: raw.trusted_root.clone(), trusted_root_line, conditions })
}

/// The first line (1-based) of `text` containing `needle`: serde gives no position for a value that
/// parsed but failed validation, and the value itself is what a reader looks for. A `field: value` needle
/// also finds a line holding both, the value quoted.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    let first = needle.lines().next().filter(|s| !s.trim().is_empty())?.trim();
    let found = text.lines().position(|l| l.contains(first));
    let both = || {
        let (field, value) = first.split_once(": ")?;
        text.lines().position(|l| l.contains(&format!("{field}:")) && l.contains(value))
    };
    found.or_else(both).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
default: deny
policies:
  - name: team-a
    images: ["registry.example/team-a/*"]
    authorities:
      - key: prod@2
      - key: release
    threshold: 2
    attestations:
      - predicate_type: https://slsa.dev/provenance/v1
        conditions:
          - predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app"
    mode: enforce
"#;

    #[test]
    fn an_oversized_policy_file_is_refused_unread_by_load_and_fingerprint_naming_it() {
        let (dir, path) = crate::local_file::sparse_file("big.yaml", MAX_POLICY_FILE_BYTES + 1);
        let loaded = PolicySet::load_file(&path).unwrap_err().to_string();
        assert!(loaded.contains(&path.display().to_string()) && loaded.contains("larger than the limit"), "{loaded}");
        let fingerprinted = fingerprint(dir.path()).unwrap_err().to_string();
        assert!(
            fingerprinted.contains("big.yaml") && fingerprinted.contains("larger than the limit"),
            "{fingerprinted}"
        );
    }

    /// The error of a policy whose one notation authority reads `trust_stores` and `crls` in a fresh folder
    /// holding a sparse `big` file of `len` bytes.
    fn notation_load_error(trust_stores: &str, crls: &str, len: u64) -> (String, String) {
        let (dir, big) = crate::local_file::sparse_file("big", len);
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/certificates/root.pem");
        std::fs::copy(ca, dir.path().join("ca.pem")).unwrap();
        let text = format!(
            "policies:\n  - name: p\n    images: [\"*\"]\n    authorities:\n      - notation:\n          \
             trust_stores: {trust_stores}\n          trusted_identities: [\"*\"]\n          \
             signature_verification: {{level: strict}}\n          crls: {crls}\n"
        );
        let file = dir.path().join("p.yaml");
        let error = PolicySet::parse(&file.display().to_string(), &text).unwrap_err().to_string();
        (error, big.display().to_string())
    }

    #[test]
    fn an_oversized_notation_trust_store_or_crl_file_is_refused_unread_naming_it() {
        let (error, big) = notation_load_error("{ca: [big]}", "[]", crate::local_file::MIB + 1);
        assert!(error.contains(&big) && error.contains("larger than the limit"), "{error}");
        let (error, big) = notation_load_error("{ca: [ca.pem]}", "[big]", 4 * crate::local_file::MIB + 1);
        assert!(error.contains(&big) && error.contains("larger than the limit"), "{error}");
    }

    #[test]
    fn a_policy_file_parses_and_compiles() {
        let (set, default) = PolicySet::parse("p.yaml", GOOD).unwrap();
        assert_eq!(default, Some(Fallback::Deny));
        let p = &set.policies[0];
        assert_eq!((p.name.as_str(), p.threshold, p.mode), ("team-a", 2, Mode::Enforce));
        assert_eq!(p.authorities[0].label(), "prod@2");
        assert_eq!(p.attestations[0].conditions.len(), 1);
    }

    #[test]
    fn images_match_by_glob() {
        let (set, _) = PolicySet::parse("p.yaml", GOOD).unwrap();
        let image = |s: &str| ImageReference::parse(s).unwrap();
        assert!(set.governing(&image("registry.example/team-a/app:1")).is_some());
        assert!(set.governing(&image("registry.example/team-a/sub/app:1")).is_none());
        assert!(set.governing(&image("registry.example/team-b/app:1")).is_none());
        assert!(glob_matches("registry.example/**", "registry.example/a/b/c"));
    }

    #[test]
    fn image_and_identity_patterns_govern_every_spelling_of_their_host() {
        let text = "policies:\n  - name: hub\n    images: [\"index.docker.io/nginx\", \"Reg.Example:443/team/*\"]\n    authorities: [{key: k}]\n    identities: [\"REG.example/staging/*\"]\n";
        let (set, _) = PolicySet::parse("p.yaml", text).unwrap();
        for spelling in [
            "docker.io/nginx:1",
            "registry-1.docker.io/library/nginx:1",
            "reg.example/team/app:1",
            "REG.EXAMPLE:443/team/app:1",
        ] {
            let image = ImageReference::parse(spelling).unwrap();
            assert_eq!(set.governing(&image).map(|p| p.name.as_str()), Some("hub"), "{spelling}");
        }
        assert_eq!(set.policies[0].identities, ["reg.example/staging/*"]);
    }

    #[test]
    fn a_policy_is_found_by_name() {
        let (set, _) = PolicySet::parse("p.yaml", GOOD).unwrap();
        assert_eq!(set.named("team-a").map(|p| p.threshold), Some(2));
        assert!(set.named("team-b").is_none());
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let bad_cel = GOOD.replace("== \"https://github.com/acme/app\"", "== (");
        let e = PolicySet::parse("p.yaml", &bad_cel).unwrap_err().to_string();
        assert!(e.starts_with("p.yaml line 13: policy \"team-a\", attestations.conditions"), "{e}");
        let bad_key = GOOD.replace("key: release", "key: \"re lease\"");
        let e = PolicySet::parse("p.yaml", &bad_key).unwrap_err().to_string();
        assert!(e.starts_with("p.yaml line 8: policy \"team-a\", authorities"), "{e}");
        let unknown = GOOD.replace("mode: enforce", "mode: maybe");
        let e = PolicySet::parse("p.yaml", &unknown).unwrap_err().to_string();
        assert!(e.starts_with("p.yaml line 14") && e.contains("mode"), "{e}");
        let threshold = GOOD.replace("threshold: 2", "threshold: 3");
        let e = PolicySet::parse("p.yaml", &threshold).unwrap_err().to_string();
        assert!(e.contains("line 9") && e.contains("threshold"), "{e}");
    }

    #[test]
    fn authorities_that_stand_for_one_key_are_refused_naming_both() {
        let pem =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/other-p256.pub")).unwrap();
        let block: String = pem.lines().map(|l| format!("          {l}\n")).collect();
        let cases = [
            ("      - key: prod\n      - key: prod@2\n", Some("prod and prod@2")),
            ("      - key: prod@2\n      - key: prod@2\n", Some("prod@2 and prod@2")),
            ("      - key: prod@1\n      - key: prod@2\n", None),
            (
                &*format!("      - public_key: |\n{block}      - public_key: |\n{block}"),
                Some("public_key #1 and public_key #2"),
            ),
        ];
        for (authorities, overlap) in cases {
            let text = format!("policies:\n  - name: p\n    images: [a]\n    authorities:\n{authorities}");
            match (PolicySet::parse("p.yaml", &text), overlap) {
                (Ok(_), None) => {}
                (Err(e), Some(both)) => {
                    let e = e.to_string();
                    assert!(
                        e.starts_with("p.yaml line") && e.contains(&format!("{both} stand for the same key")),
                        "{e}"
                    );
                }
                (other, _) => panic!("{authorities}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_checkpoint_key_is_no_authority_by_id_or_by_public_key() {
        let pem =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/other-p256.pub")).unwrap();
        let key = PublicKey::from_pem(&pem).unwrap();
        let block: String = pem.lines().map(|l| format!("          {l}\n")).collect();
        let policy = |authorities: &str| {
            let text = format!("policies:\n  - name: p\n    images: [a]\n    authorities:\n{authorities}");
            PolicySet::parse("p.yaml", &text).unwrap().0.policies.remove(0)
        };
        let by_id = policy("      - key: prod\n      - key: log@1\n");
        let e = by_id.checkpoint_key_authority("log", None, &[None, None]).unwrap_err().to_string();
        assert!(
            e.starts_with("p.yaml line 6: policy \"p\", authorities: log@1 is the register's checkpoint key"),
            "{e}"
        );
        assert!(by_id.checkpoint_key_authority("other", None, &[None, None]).is_ok());

        let inline = policy(&format!("      - key: prod\n      - public_key: |\n{block}"));
        let known = [None, Some(vec![key.clone()])];
        let e = inline.checkpoint_key_authority("log", Some(std::slice::from_ref(&key)), &known).unwrap_err();
        assert!(e.to_string().contains("public_key #2 is the register's checkpoint key ([log] key log)"), "{e}");
        assert!(inline.checkpoint_key_authority("log", None, &known).is_ok(), "unknown checkpoint key versions");
    }

    const KEYLESS: &str = r#"
policies:
  - name: upstream
    images: ["registry.example/upstream/*"]
    authorities:
      - keyless:
          issuer: https://token.actions.githubusercontent.com
          subject: https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main
          trusted_root: public-good
      - keyless:
          issuer: https://accounts.example
          subject_regex: '.*@acme\.example'
          conditions:
            - certificate.sourceRepositoryRef == "refs/heads/main"
      - key: prod
        require_tlog: true
    threshold: 2
"#;

    #[test]
    fn keyless_authorities_parse_with_their_issuer_subject_and_root() {
        let (set, _) = PolicySet::parse("k.yaml", KEYLESS).unwrap();
        let p = &set.policies[0];
        let Authority::Keyless(first) = &p.authorities[0] else { panic!("keyless") };
        assert_eq!(first.trusted_root.as_deref(), Some("public-good"));
        assert!(first.names(
            "https://token.actions.githubusercontent.com",
            "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
        ));
        assert!(!first.names(
            "https://accounts.example",
            "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
        ));
        let Authority::Keyless(second) = &p.authorities[1] else { panic!("keyless") };
        assert!(second.names("https://accounts.example", "ci@acme.example"));
        assert!(!second.names("https://accounts.example", "ci@acme.example.evil"), "the regex is anchored");
        assert!(second.trusts_root("any") && !first.trusts_root("private"));
        assert_eq!(second.label(), "keyless /.*@acme\\.example/ from https://accounts.example");
        assert_eq!(second.conditions.len(), 1);
        assert_eq!(p.require_tlog, [true, true, true]);
        assert_eq!(p.authority_lines, [Some(8), Some(12), Some(15)]);
        set.check_trusted_roots(&["public-good"]).unwrap();
    }

    #[test]
    fn policy_check_names_a_bad_regex_a_missing_issuer_and_an_unknown_trusted_root() {
        let bad_regex = KEYLESS.replace(r"'.*@acme\.example'", r#""(unclosed""#);
        let e = PolicySet::parse("k.yaml", &bad_regex).unwrap_err().to_string();
        assert!(e.starts_with("k.yaml line 12: policy \"upstream\", authorities: subject_regex is not a valid"), "{e}");
        let no_issuer = KEYLESS.replace("          issuer: https://accounts.example\n", "");
        let e = PolicySet::parse("k.yaml", &no_issuer).unwrap_err().to_string();
        assert!(e.starts_with("k.yaml line 11: policy \"upstream\", authorities: keyless.issuer is missing"), "{e}");
        let both = KEYLESS.replace("trusted_root: public-good", "subject_regex: x");
        let e = PolicySet::parse("k.yaml", &both).unwrap_err().to_string();
        assert!(e.contains("exactly one of subject or subject_regex"), "{e}");
        let bad_condition = KEYLESS.replace("certificate.sourceRepositoryRef", "predicate.x");
        let e = PolicySet::parse("k.yaml", &bad_condition).unwrap_err().to_string();
        assert!(e.contains("line 12") && e.contains("unknown variable \"predicate\""), "{e}");
        let keyless_tlog = KEYLESS.replace("          trusted_root: public-good\n", "        require_tlog: true\n");
        assert!(PolicySet::parse("k.yaml", &keyless_tlog).unwrap_err().to_string().contains("require_tlog is for key"));
        let (set, _) = PolicySet::parse("k.yaml", KEYLESS).unwrap();
        let e = set.check_trusted_roots(&["private"]).unwrap_err().to_string();
        assert_eq!(
            e,
            "k.yaml line 9: policy \"upstream\", authorities: trusted_root \"public-good\" is not a configured \
             trusted root ([sigstore] trusted_roots: private)"
        );
    }

    #[test]
    fn one_keyless_identity_twice_is_refused() {
        let text = "policies:\n  - name: p\n    images: [a]\n    authorities:\n      - keyless: {issuer: i, subject: s}\n      - keyless: {issuer: i, subject: s, trusted_root: x}\n";
        let e = PolicySet::parse("p.yaml", text).unwrap_err().to_string();
        assert!(e.contains("keyless s from i and keyless s from i stand for the same identity"), "{e}");
        let other = text.replace("subject: s, trusted_root", "subject: t, trusted_root");
        assert!(PolicySet::parse("p.yaml", &other).is_ok());
    }

    #[test]
    fn the_shipped_examples_load() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
        let set = PolicySet::load_dir(Path::new(dir)).unwrap();
        assert!(set.policies.len() >= 2);
        assert_eq!(set.default, Fallback::Deny);
    }

    #[test]
    fn texts_load_as_the_folder_holding_them_would() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
            .collect();
        files.reverse();
        let (texts, folder) = (PolicySet::from_texts(&files).unwrap(), PolicySet::load_dir(Path::new(dir)).unwrap());
        let names = |s: &PolicySet| s.policies.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&texts), names(&folder), "file-name order, whatever order they are given in");
        assert_eq!(texts.default, folder.default);

        let disagreeing =
            [("a.yaml".to_owned(), "default: allow\n".to_owned()), ("b.yaml".into(), "default: deny\n".into())];
        assert_eq!(
            PolicySet::from_texts(&disagreeing).unwrap_err().to_string(),
            "b.yaml: default: disagrees with a.yaml's"
        );
        let broken = [("x.yaml".to_owned(), "policies:\n  - name: a\n    images: [\n".to_owned())];
        assert!(PolicySet::from_texts(&broken).unwrap_err().to_string().starts_with("x.yaml line "));
    }
}

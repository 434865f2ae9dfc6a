//! The decision engine: from a policy, the public keys its authorities stand for and the evidence read
//! from a registry, to an allowance and the reasons for it. Pure: no I/O and no clock.
//!
//! Owns: identity binding (a signature counts only for the repository it names), counting over distinct
//! public keys (k of n means k keys, each signature meeting at most one authority), attestation checks and
//! their conditions, `require_digest`. Must not touch: registries, key backends, the register, the cache;
//! `service::verify` gathers the evidence and records the decision.

use std::collections::HashMap;

use serde::Serialize;

use super::{ConditionOutcome, IdentityMode, Mode, Policy, RequiredAttestation};
use crate::formats::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::formats::in_toto::{COSIGN_SIGN_V1, Statement};
use crate::formats::simple_signing::SimpleSigning;
use crate::formats::{Digest, FormatError, ImageReference};
use crate::glob::glob_matches;
use crate::keys::PublicKey;

/// A simple-signing payload and the signature over it, as read from a `.sig` layer (unverified).
#[derive(Debug, Clone)]
pub struct SignedPayload {
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Everything read about one digest: tag-scheme signatures, DSSE envelopes (`.att` layers and Sigstore
/// bundle referrers), and what could not be read, with why.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub signatures: Vec<SignedPayload>,
    pub envelopes: Vec<Vec<u8>>,
    pub skipped: Vec<String>,
}

/// An authority and the public keys it stands for, or why they could not be had.
#[derive(Debug, Clone)]
pub struct AuthorityKeys {
    pub label: String,
    pub keys: Result<Vec<PublicKey>, String>,
}

/// What the engine needs to know besides the policy and the evidence.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// An envelope carrying more signatures than this is skipped before any is checked.
    pub max_envelope_signatures: usize,
}

/// The engine's answer.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub allowed: bool,
    pub reasons: Vec<String>,
    pub signatures: Vec<UsedSignature>,
    pub attestations: Vec<UsedAttestation>,
    /// Evidence left out, with why (unreadable, oversized, over a cap).
    pub skipped: Vec<String>,
}

/// A signature that counted toward the threshold.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsedSignature {
    pub authority: String,
    /// The repository (and tag) the signature names, in canonical form.
    pub identity: Option<String>,
    /// SHA-256 of the signature bytes (of the envelope for a bundle signature), to find it again.
    pub signature_sha256: String,
}

/// An attestation that satisfied a requirement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsedAttestation {
    pub predicate_type: String,
    pub authority: String,
    pub envelope_digest: String,
}

/// Decides whether `digest`, which `image` names, may run under `policy`.
pub fn decide(
    policy: &Policy,
    authorities: &[AuthorityKeys],
    image: &ImageReference,
    digest: &Digest,
    evidence: &Evidence,
    bounds: Bounds,
) -> Verdict {
    let keys = DistinctKeys::of(authorities);
    let binding = Binding { policy, image, digest };
    let mut skipped = evidence.skipped.clone();
    let statements = verified_statements(&evidence.envelopes, &keys, &binding, bounds, &mut skipped);
    let candidates = signature_candidates(&evidence.signatures, &statements, &keys, &binding);
    let (signatures, mut reasons) = count_signers(policy, authorities, &keys, &candidates, digest);
    let mut attestations = Vec::new();
    for required in &policy.attestations {
        match check_attestation(required, authorities, &keys, &statements) {
            Ok(used) => attestations.push(used),
            Err(why) => reasons.extend(why),
        }
    }
    if policy.require_digest && image.digest.is_none() {
        reasons.push(format!("{image} names a tag: policy {:?} requires a digest (require_digest)", policy.name));
    }
    Verdict { allowed: reasons.is_empty() || policy.mode == Mode::Warn, reasons, signatures, attestations, skipped }
}

/// The repository (and tag) a signature may name for `image`, and the digest it must name.
struct Binding<'a> {
    policy: &'a Policy,
    image: &'a ImageReference,
    digest: &'a Digest,
}

impl Binding<'_> {
    /// Why `named` (a simple-signing `docker-reference` or a subject name) does not identify the image, if it
    /// does not. With `with_tag`, `identity: exact` also compares the tag.
    fn mismatch(&self, named: &str, with_tag: bool) -> Option<String> {
        let needed = self.needed(with_tag);
        let Some((repository, tag)) = parse_identity(named) else {
            return Some(format!("names {named:?}, which is not an image reference; {needed} was needed"));
        };
        let repository_ok = repository == self.image.repository_name()
            || self.policy.identities.iter().any(|glob| glob_matches(glob, &repository));
        let tag_ok = !with_tag || self.policy.identity == IdentityMode::Repository || tag == self.image.tag;
        let shown = match &tag {
            Some(tag) => format!("{repository}:{tag}"),
            None => repository,
        };
        (!(repository_ok && tag_ok)).then(|| format!("names {shown}; {needed} was needed"))
    }

    fn needed(&self, with_tag: bool) -> String {
        let mut needed = self.image.repository_name();
        if with_tag && self.policy.identity == IdentityMode::Exact {
            needed = match &self.image.tag {
                Some(tag) => format!("{needed}:{tag}"),
                None => format!("{needed} without a tag"),
            };
        }
        for glob in &self.policy.identities {
            needed.push_str(&format!(" or {glob}"));
        }
        needed
    }
}

/// `host/repo[:tag]` in canonical form, and the tag only when `named` spells one (a bare name is not `latest`).
fn parse_identity(named: &str) -> Option<(String, Option<String>)> {
    let parsed = ImageReference::parse(named).ok()?;
    let name = named.split('@').next().unwrap_or(named);
    let spells_tag = name.rsplit('/').next().is_some_and(|last| last.contains(':'));
    Some((parsed.repository_name(), parsed.tag.filter(|_| spells_tag)))
}

/// The public keys of every authority, each distinct key once (by SPKI), and which authorities stand for it.
struct DistinctKeys {
    keys: Vec<PublicKey>,
    /// For each authority, the indexes of its keys in `keys`.
    of_authority: Vec<Vec<usize>>,
}

impl DistinctKeys {
    fn of(authorities: &[AuthorityKeys]) -> Self {
        let mut keys: Vec<PublicKey> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let of_authority = authorities
            .iter()
            .map(|a| {
                let mut mine: Vec<usize> = a
                    .keys
                    .iter()
                    .flatten()
                    .map(|key| {
                        *index.entry(key.spki_der().to_vec()).or_insert_with(|| {
                            keys.push(key.clone());
                            keys.len() - 1
                        })
                    })
                    .collect();
                mine.dedup();
                mine
            })
            .collect();
        Self { keys, of_authority }
    }
}

/// A verified in-toto statement: by which distinct key, and whether its subject names the image.
struct VerifiedStatement {
    key: usize,
    statement: Statement,
    envelope_sha256: String,
    /// Why the subject does not bind to this image (another digest, or a name of another repository).
    unbound: Option<String>,
}

/// Every envelope that verifies under some authority's key, once per key that signed it.
fn verified_statements(
    envelopes: &[Vec<u8>],
    keys: &DistinctKeys,
    binding: &Binding<'_>,
    bounds: Bounds,
    skipped: &mut Vec<String>,
) -> Vec<VerifiedStatement> {
    let mut verified = Vec::new();
    for bytes in envelopes {
        let envelope = match Envelope::parse_bounded(bytes, bounds.max_envelope_signatures) {
            Ok(envelope) if envelope.payload_type == IN_TOTO_PAYLOAD_TYPE => envelope,
            Err(e @ FormatError::TooManySignatures { .. }) => {
                skipped.push(format!("envelope {}: {e}", Digest::of(bytes)));
                continue;
            }
            _ => continue,
        };
        let envelope_sha256 = Digest::of(bytes).hex().to_owned();
        for (key, public_key) in keys.keys.iter().enumerate() {
            let Ok(payload) = envelope.verify(public_key) else { continue };
            let Ok(statement) = Statement::parse(payload) else { continue };
            let unbound = subject_mismatch(&statement, binding);
            verified.push(VerifiedStatement { key, statement, envelope_sha256: envelope_sha256.clone(), unbound });
        }
    }
    verified
}

/// Why `statement` is not about this image: no subject with its digest, or every such subject names
/// another repository.
fn subject_mismatch(statement: &Statement, binding: &Binding<'_>) -> Option<String> {
    let about: Vec<_> = statement.subject.iter().filter(|s| s.sha256_hex() == Some(binding.digest.hex())).collect();
    if about.is_empty() {
        return Some(format!("a {} statement names another digest", statement.predicate_type));
    }
    let mismatches: Vec<String> = about
        .iter()
        .filter_map(|s| match s.name.as_deref().filter(|n| !n.is_empty()) {
            None => None,
            Some(name) => Some(binding.mismatch(name, false)?),
        })
        .collect();
    (mismatches.len() == about.len())
        .then(|| format!("a {} statement's subject {}", statement.predicate_type, mismatches.join(", ")))
}

/// A valid signature by a distinct key, bound to the image or not.
struct Candidate {
    key: usize,
    used: UsedSignature,
    /// Why it does not count for this image, when it names another.
    unbound: Option<String>,
}

/// Every (key, signature) pair that verifies: simple-signing layers about the digest, and cosign v3
/// `cosign/sign/v1` statements.
fn signature_candidates(
    signatures: &[SignedPayload],
    statements: &[VerifiedStatement],
    keys: &DistinctKeys,
    binding: &Binding<'_>,
) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    for signed in signatures {
        let Ok(payload) = SimpleSigning::parse(&signed.payload) else { continue };
        if payload.digest() != binding.digest.as_str() {
            continue;
        }
        let named = payload.identity();
        for (key, public_key) in keys.keys.iter().enumerate() {
            if public_key.verify(&signed.payload, &signed.signature).is_ok() {
                let identity = parse_identity(named).map(|(repo, tag)| match tag {
                    Some(tag) => format!("{repo}:{tag}"),
                    None => repo,
                });
                let used = UsedSignature {
                    authority: String::new(),
                    identity,
                    signature_sha256: Digest::of(&signed.signature).hex().to_owned(),
                };
                candidates.push(Candidate { key, used, unbound: binding.mismatch(named, true) });
            }
        }
    }
    for s in statements.iter().filter(|s| s.statement.predicate_type == COSIGN_SIGN_V1) {
        let named = subject_name(&s.statement, binding.digest);
        let identity = named.and_then(parse_identity).map(|(repo, _)| repo);
        let used = UsedSignature { authority: String::new(), identity, signature_sha256: s.envelope_sha256.clone() };
        let unbound = s.unbound.clone().or_else(|| exact_statement_mismatch(named, binding));
        candidates.push(Candidate { key: s.key, used, unbound });
    }
    candidates
}

/// The name of the subject of `statement` that carries `digest`, if it has one.
fn subject_name<'a>(statement: &'a Statement, digest: &Digest) -> Option<&'a str> {
    statement
        .subject
        .iter()
        .filter(|s| s.sha256_hex() == Some(digest.hex()))
        .find_map(|s| s.name.as_deref().filter(|n| !n.is_empty()))
}

/// Under `identity: exact`, a statement used as a signature must name the tag too; one without a name
/// cannot.
fn exact_statement_mismatch(named: Option<&str>, binding: &Binding<'_>) -> Option<String> {
    if binding.policy.identity != IdentityMode::Exact {
        return None;
    }
    match named {
        Some(named) => binding.mismatch(named, true),
        None => Some(format!("names no repository; {} was needed", binding.needed(true))),
    }
}

/// The signatures that count, one distinct key per authority (a maximum matching, so no assignment order
/// can do better), and, below the threshold, why.
fn count_signers(
    policy: &Policy,
    authorities: &[AuthorityKeys],
    keys: &DistinctKeys,
    candidates: &[Candidate],
    digest: &Digest,
) -> (Vec<UsedSignature>, Vec<String>) {
    let bound: Vec<&Candidate> = candidates.iter().filter(|c| c.unbound.is_none()).collect();
    let signed_keys: Vec<Vec<usize>> = keys
        .of_authority
        .iter()
        .map(|mine| mine.iter().copied().filter(|k| bound.iter().any(|c| c.key == *k)).collect())
        .collect();
    let matched = maximum_matching(&signed_keys, keys.keys.len());
    let mut used = Vec::new();
    for (authority, key) in matched.iter().enumerate() {
        if let Some(key) = key {
            let candidate = bound.iter().find(|c| c.key == *key).expect("a matched key has a bound candidate");
            used.push(UsedSignature { authority: authorities[authority].label.clone(), ..candidate.used.clone() });
        }
    }
    if used.len() >= policy.threshold {
        return (used, Vec::new());
    }
    let mut reasons = vec![format!("{} of the {} required authorities signed {digest}", used.len(), policy.threshold)];
    for (authority, a) in authorities.iter().enumerate().filter(|(i, _)| matched[*i].is_none()) {
        reasons.push(missing_signer_reason(a, &keys.of_authority[authority], &signed_keys[authority], candidates));
    }
    (used, reasons)
}

/// Why `authority` did not count: its key could not be had, its key already counted for another
/// authority, or no signature by its keys names this image.
fn missing_signer_reason(
    authority: &AuthorityKeys,
    its_keys: &[usize],
    signed: &[usize],
    candidates: &[Candidate],
) -> String {
    let label = &authority.label;
    if let Err(e) = &authority.keys {
        return format!("no valid signature by {label}: {e}");
    }
    if !signed.is_empty() {
        return format!("{label} signed with a key that already counted for another authority (one key counts once)");
    }
    let unbound: Vec<&str> =
        candidates.iter().filter(|c| its_keys.contains(&c.key)).filter_map(|c| c.unbound.as_deref()).collect();
    match unbound.first() {
        Some(why) => format!("no valid signature by {label} for this image: a signature by {label} {why}"),
        None => format!("no valid signature by {label}"),
    }
}

/// For each authority, the key it is matched to, so that no key serves two authorities and as many
/// authorities as possible are matched (augmenting paths; policies list a handful of authorities).
fn maximum_matching(signed_keys: &[Vec<usize>], key_count: usize) -> Vec<Option<usize>> {
    let mut owner: Vec<Option<usize>> = vec![None; key_count];
    for authority in 0..signed_keys.len() {
        let mut visited = vec![false; key_count];
        augment(authority, signed_keys, &mut owner, &mut visited);
    }
    let mut matched = vec![None; signed_keys.len()];
    for (key, authority) in owner.iter().enumerate() {
        if let Some(a) = authority {
            matched[*a] = Some(key);
        }
    }
    matched
}

fn augment(authority: usize, signed_keys: &[Vec<usize>], owner: &mut [Option<usize>], visited: &mut [bool]) -> bool {
    for &key in &signed_keys[authority] {
        if visited[key] {
            continue;
        }
        visited[key] = true;
        if owner[key].is_none_or(|other| augment(other, signed_keys, owner, visited)) {
            owner[key] = Some(authority);
            return true;
        }
    }
    false
}

/// The first statement of `required`'s type by an authority's key, about this image, whose predicate meets
/// every condition; otherwise why none did.
fn check_attestation(
    required: &RequiredAttestation,
    authorities: &[AuthorityKeys],
    keys: &DistinctKeys,
    statements: &[VerifiedStatement],
) -> Result<UsedAttestation, Vec<String>> {
    let wanted = required.predicate_type.as_str();
    let mut unbound = Vec::new();
    let mut failed_conditions = Vec::new();
    for s in statements.iter().filter(|s| s.statement.predicate_type == wanted) {
        if let Some(why) = &s.unbound {
            unbound.push(why.clone());
            continue;
        }
        let failures = failing_conditions(required, &s.statement.predicate);
        if failures.is_empty() {
            let authority = authority_of(authorities, keys, s.key);
            let envelope_digest = format!("sha256:{}", s.envelope_sha256);
            return Ok(UsedAttestation { predicate_type: wanted.to_owned(), authority, envelope_digest });
        }
        failed_conditions.extend(failures.into_iter().map(|f| format!("attestation {wanted}: {f}")));
    }
    if !failed_conditions.is_empty() {
        return Err(failed_conditions);
    }
    let mut reason = format!("no valid {wanted} attestation signed by an authority");
    if !unbound.is_empty() {
        unbound.dedup();
        reason = format!("{reason} ({})", unbound.join("; "));
    }
    Err(vec![reason])
}

/// The label of the first authority standing for distinct key `key`.
fn authority_of(authorities: &[AuthorityKeys], keys: &DistinctKeys, key: usize) -> String {
    let position = keys.of_authority.iter().position(|mine| mine.contains(&key)).expect("every key has an authority");
    authorities[position].label.clone()
}

fn failing_conditions(required: &RequiredAttestation, predicate: &serde_json::Value) -> Vec<String> {
    required
        .conditions
        .iter()
        .filter_map(|c| match c.evaluate(predicate) {
            ConditionOutcome::Holds => None,
            ConditionOutcome::Fails(why) => Some(why),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::in_toto::Subject;
    use crate::policy::PolicySet;
    use p256::ecdsa::signature::Signer as _;

    const HOST: &str = "r.example";

    struct Key {
        signing: p256::ecdsa::SigningKey,
        public: PublicKey,
    }

    fn key(seed: u8) -> Key {
        let signing = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
        let public = PublicKey::from_p256(signing.verifying_key());
        Key { signing, public }
    }

    impl Key {
        fn sign(&self, message: &[u8]) -> Vec<u8> {
            let signature: p256::ecdsa::Signature = self.signing.sign(message);
            signature.to_der().as_bytes().to_vec()
        }

        fn simple(&self, identity: &str, digest: &Digest) -> SignedPayload {
            let payload = SimpleSigning::new(identity, digest, None).to_bytes();
            SignedPayload { signature: self.sign(&payload), payload }
        }

        fn statement(&self, name: Option<&str>, digest: &Digest, predicate_type: &str) -> Vec<u8> {
            let statement = Statement::v1(vec![Subject::sha256(name, digest)], predicate_type, serde_json::json!({}));
            let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, statement.to_json());
            envelope.add_signature(self.sign(&envelope.pae()));
            envelope.to_json()
        }
    }

    fn policy(extra: &str) -> Policy {
        let text = format!(
            "policies:\n  - name: p\n    images: [\"{HOST}/team-b/*\"]\n    authorities: [{{key: a}}, {{key: b}}]\n{extra}"
        );
        PolicySet::parse("p.yaml", &text).unwrap().0.policies.remove(0)
    }

    fn authority(label: &str, keys: &[&Key]) -> AuthorityKeys {
        AuthorityKeys { label: label.into(), keys: Ok(keys.iter().map(|k| k.public.clone()).collect()) }
    }

    fn image(reference: &str) -> ImageReference {
        ImageReference::parse(reference).unwrap()
    }

    fn digest() -> Digest {
        Digest::of(b"image")
    }

    const BOUNDS: Bounds = Bounds { max_envelope_signatures: 4 };

    fn judge(policy: &Policy, authorities: &[AuthorityKeys], reference: &str, evidence: Evidence) -> Verdict {
        decide(policy, authorities, &image(reference), &digest(), &evidence, BOUNDS)
    }

    fn signatures(signed: Vec<SignedPayload>) -> Evidence {
        Evidence { signatures: signed, ..Evidence::default() }
    }

    #[test]
    fn a_signature_counts_only_for_the_repository_it_names() {
        let (a, b) = (key(1), key(2));
        let authorities = [authority("a", &[&a]), authority("b", &[&b])];
        let d = digest();
        let here = format!("{HOST}/team-b/app@{d}");
        let cases: [(&str, &str, bool); 6] = [
            ("", "r.example/team-b/app", true),
            ("", "r.example/team-b/app:v1", true),
            ("", "r.example/team-a/app", false),
            ("", "r.example/team-b/app-other", false),
            ("", "not a reference", false),
            ("    identities: [\"r.example/team-a/*\"]\n", "r.example/team-a/app", true),
        ];
        for (extra, named, allowed) in cases {
            let verdict = judge(&policy(extra), &authorities, &here, signatures(vec![a.simple(named, &d)]));
            assert_eq!(verdict.allowed, allowed, "{extra} {named}: {:?}", verdict.reasons);
            if !allowed {
                let why = verdict.reasons.join(" | ");
                assert!(why.contains("was needed") && why.contains("r.example/team-b/app"), "{why}");
            }
        }
    }

    #[test]
    fn exact_identity_compares_the_tag_too() {
        let a = key(1);
        let authorities = [authority("a", &[&a])];
        let p = policy("    identity: exact\n    threshold: 1\n");
        let d = digest();
        let cases = [
            ("r.example/team-b/app:v1", "r.example/team-b/app:v1", true),
            ("r.example/team-b/app:v1", "r.example/team-b/app:v2", false),
            ("r.example/team-b/app:v1", "r.example/team-b/app", false),
            ("r.example/team-b/app", "r.example/team-b/app:v1", false),
        ];
        for (named, requested, allowed) in cases {
            let reference = format!("{requested}@{d}");
            let verdict = judge(&p, &authorities, &reference, signatures(vec![a.simple(named, &d)]));
            assert_eq!(verdict.allowed, allowed, "{named} for {requested}: {:?}", verdict.reasons);
        }
        let nameless = Evidence { envelopes: vec![a.statement(None, &d, COSIGN_SIGN_V1)], ..Evidence::default() };
        let verdict = judge(&p, &authorities, &format!("r.example/team-b/app:v1@{d}"), nameless);
        assert!(!verdict.allowed, "a bundle signature naming no tag cannot meet identity: exact");
        assert!(verdict.reasons.join(" ").contains("names no repository"), "{:?}", verdict.reasons);
    }

    #[test]
    fn one_key_meets_at_most_one_authority() {
        let (a, b) = (key(1), key(2));
        let d = digest();
        let here = format!("{HOST}/team-b/app@{d}");
        let p = policy("    threshold: 2\n");
        let one_signature = signatures(vec![a.simple("r.example/team-b/app", &d)]);
        let same_key_twice = [authority("a", &[&a]), authority("b", &[&a])];
        let verdict = judge(&p, &same_key_twice, &here, one_signature);
        assert!(!verdict.allowed);
        assert!(verdict.reasons.join(" ").contains("already counted for another authority"), "{:?}", verdict.reasons);
        // The same key signing twice is still one key.
        let twice = signatures(vec![a.simple("r.example/team-b/app", &d), a.simple("r.example/team-b/app:v1", &d)]);
        assert!(!judge(&p, &same_key_twice, &here, twice).allowed);
        // A maximum matching: `a` could take either key, `b` only key a; both count.
        let flexible = [authority("a", &[&a, &b]), authority("b", &[&a])];
        let both = signatures(vec![a.simple("r.example/team-b/app", &d), b.simple("r.example/team-b/app", &d)]);
        let verdict = judge(&p, &flexible, &here, both);
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        let used: Vec<_> = verdict.signatures.iter().map(|s| s.signature_sha256.clone()).collect();
        assert_ne!(used[0], used[1]);
    }

    #[test]
    fn signatures_about_another_digest_or_by_another_key_do_not_count() {
        let (a, b, c) = (key(1), key(2), key(3));
        let authorities = [authority("a", &[&a]), authority("b", &[&b])];
        let d = digest();
        let here = format!("{HOST}/team-b/app@{d}");
        let other = signatures(vec![a.simple("r.example/team-b/app", &Digest::of(b"other"))]);
        assert!(!judge(&policy(""), &authorities, &here, other).allowed);
        let stranger = signatures(vec![c.simple("r.example/team-b/app", &d)]);
        assert!(!judge(&policy(""), &authorities, &here, stranger).allowed);
        let mut forged = a.simple("r.example/team-b/app", &d);
        forged.payload = SimpleSigning::new("r.example/team-b/app", &Digest::of(b"x"), None).to_bytes();
        assert!(!judge(&policy(""), &authorities, &here, signatures(vec![forged])).allowed);
    }

    #[test]
    fn statements_count_only_when_their_subject_names_this_image() {
        let a = key(1);
        let authorities = [authority("a", &[&a]), authority("b", &[&key(2)])];
        let p = policy(&format!("    attestations: [{{predicate_type: \"{COSIGN_SIGN_V1}x\"}}]\n"));
        let d = digest();
        let here = format!("{HOST}/team-b/app@{d}");
        let signed = a.simple("r.example/team-b/app", &d);
        let predicate = format!("{COSIGN_SIGN_V1}x");
        let cases = [
            (None, true),
            (Some("r.example/team-b/app"), true),
            (Some("r.example/team-a/app"), false),
            (Some("app.tar"), false),
        ];
        for (name, allowed) in cases {
            let evidence = Evidence {
                signatures: vec![signed.clone()],
                envelopes: vec![a.statement(name, &d, &predicate)],
                skipped: Vec::new(),
            };
            let verdict = judge(&p, &authorities, &here, evidence);
            assert_eq!(verdict.allowed, allowed, "{name:?}: {:?}", verdict.reasons);
        }
        let bundle_signature =
            Evidence { envelopes: vec![a.statement(None, &d, COSIGN_SIGN_V1)], ..Evidence::default() };
        assert!(judge(&policy(""), &authorities, &here, bundle_signature).allowed);
        let copied = Evidence {
            envelopes: vec![a.statement(Some("r.example/team-a/app"), &d, COSIGN_SIGN_V1)],
            ..Evidence::default()
        };
        assert!(!judge(&policy(""), &authorities, &here, copied).allowed);
    }

    #[test]
    fn an_envelope_over_the_signature_cap_is_skipped_unchecked() {
        let a = key(1);
        let authorities = [authority("a", &[&a]), authority("b", &[&key(2)])];
        let d = digest();
        let statement = Statement::v1(vec![Subject::sha256(None, &d)], COSIGN_SIGN_V1, serde_json::json!({}));
        let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, statement.to_json());
        for _ in 0..BOUNDS.max_envelope_signatures + 1 {
            envelope.add_signature(a.sign(&envelope.pae()));
        }
        let evidence = Evidence { envelopes: vec![envelope.to_json()], ..Evidence::default() };
        let verdict = judge(&policy(""), &authorities, &format!("{HOST}/team-b/app@{d}"), evidence);
        assert!(!verdict.allowed);
        assert!(verdict.skipped[0].ends_with("has 5 signatures; the limit is 4"), "{:?}", verdict.skipped);
    }

    #[test]
    fn require_digest_denies_a_tag_and_warn_mode_only_warns() {
        let a = key(1);
        let authorities = [authority("a", &[&a]), authority("b", &[&key(2)])];
        let d = digest();
        let evidence = signatures(vec![a.simple("r.example/team-b/app", &d)]);
        let p = policy("    require_digest: true\n");
        assert!(!judge(&p, &authorities, "r.example/team-b/app:v1", evidence.clone()).allowed);
        assert!(judge(&p, &authorities, &format!("r.example/team-b/app:v1@{d}"), evidence.clone()).allowed);
        let warn = policy("    require_digest: true\n    mode: warn\n");
        let verdict = judge(&warn, &authorities, "r.example/team-b/app:v1", evidence);
        assert!(verdict.allowed && verdict.reasons[0].contains("require_digest"), "{:?}", verdict.reasons);
    }

    #[test]
    fn an_authority_whose_key_cannot_be_had_says_why() {
        let a = key(1);
        let d = digest();
        let broken = AuthorityKeys { label: "b".into(), keys: Err("vault unreachable".into()) };
        let authorities = [authority("a", &[&a]), broken];
        let p = policy("    threshold: 2\n");
        let verdict = judge(
            &p,
            &authorities,
            &format!("{HOST}/team-b/app@{d}"),
            signatures(vec![a.simple("r.example/team-b/app", &d)]),
        );
        assert!(
            verdict.reasons.contains(&"no valid signature by b: vault unreachable".to_owned()),
            "{:?}",
            verdict.reasons
        );
    }
}

//! Sigstore `TrustedRoot` documents (media types v0.1 and v0.2): certificate authorities, transparency logs
//! (Rekor v1 and v2), CT logs and timestamp authorities, each with its validity window. The public-good
//! production root ships with the crate (`trusted-roots/sigstore-public-good.json`).
//!
//! Owns: reading the document (proto3 JSON: camelCase names, snake_case accepted; bytes in base64; times in
//! RFC 3339) into keys and DER certificates, and the bounds a trusted root must respect (docs/FORMATS.md
//! §19). Must not touch: where the file comes from (configuration) or what is verified with it.

use base64::Engine as _;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::PkiError;
use super::key::{HashAlgorithm, VerifyingKey};

/// The media types a trusted root may declare.
pub const MEDIA_TYPES: [&str; 2] =
    ["application/vnd.dev.sigstore.trustedroot+json;version=0.1", "application/vnd.dev.sigstore.trustedroot.v0.2+json"];

/// A larger document is refused before it is parsed (the public-good root is about 10 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// At most this many authorities or logs in one list.
pub const MAX_ENTRIES: usize = 64;
/// At most this many certificates in one authority's chain.
pub const MAX_CHAIN: usize = 8;

/// A validity window; `end` is inclusive, `None` means still valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub start: OffsetDateTime,
    pub end: Option<OffsetDateTime>,
}

impl Validity {
    /// Whether `at` falls in the window, both ends included.
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.start <= at && self.end.is_none_or(|end| at <= end)
    }
}

/// A Fulcio-like certificate authority or a timestamp authority.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    /// The `uri` (or subject) it is known by, for reasons.
    pub name: String,
    /// DER certificates, as the trusted root lists them (issuing certificate first, root last).
    pub certificates: Vec<Vec<u8>>,
    pub validity: Validity,
}

/// A Rekor log or a CT log.
#[derive(Debug, Clone)]
pub struct TransparencyLog {
    pub base_url: String,
    /// The log id (SHA-256 of the key's DER for Rekor v1 and CT logs) entries name the log by.
    pub log_id: Vec<u8>,
    pub key: VerifyingKey,
    pub validity: Validity,
    /// The hash of the log's Merkle tree.
    pub hash_algorithm: HashAlgorithm,
    /// The id a Rekor v2 checkpoint's signature names the key by, when the root gives one.
    pub checkpoint_key_id: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default)]
pub struct TrustedRoot {
    pub certificate_authorities: Vec<CertificateAuthority>,
    pub tlogs: Vec<TransparencyLog>,
    pub ctlogs: Vec<TransparencyLog>,
    pub timestamp_authorities: Vec<CertificateAuthority>,
    /// Entries left out because this verifier cannot use them (an unsupported key type or hash), one line
    /// each; a document that is malformed is refused instead.
    pub skipped: Vec<String>,
}

impl TrustedRoot {
    pub fn parse(bytes: &[u8]) -> Result<Self, PkiError> {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(fail(format!("{} bytes, more than the {MAX_DOCUMENT_BYTES} accepted", bytes.len())));
        }
        let doc: RootDoc = serde_json::from_slice(bytes).map_err(|e| fail(format!("not a trusted root: {e}")))?;
        if !MEDIA_TYPES.contains(&doc.media_type.as_str()) {
            return Err(fail(format!("unknown media type {:?}", short(&doc.media_type))));
        }
        let mut root = Self::default();
        for (list, len) in [
            ("tlogs", doc.tlogs.len()),
            ("ctlogs", doc.ctlogs.len()),
            ("certificateAuthorities", doc.certificate_authorities.len()),
            ("timestampAuthorities", doc.timestamp_authorities.len()),
        ] {
            if len > MAX_ENTRIES {
                return Err(fail(format!("{list} lists {len} entries, more than the {MAX_ENTRIES} accepted")));
            }
        }
        root.tlogs = read_logs("tlogs", doc.tlogs, &mut root.skipped)?;
        root.ctlogs = read_logs("ctlogs", doc.ctlogs, &mut root.skipped)?;
        root.certificate_authorities = read_authorities("certificateAuthorities", doc.certificate_authorities)?;
        root.timestamp_authorities = read_authorities("timestampAuthorities", doc.timestamp_authorities)?;
        Ok(root)
    }

    /// The Sigstore public-good production root shipped with notarium.
    pub fn production() -> Self {
        Self::parse(PRODUCTION).expect("the shipped production trusted root parses")
    }

    /// The Rekor log whose id is `log_id`.
    pub fn tlog(&self, log_id: &[u8]) -> Option<&TransparencyLog> {
        self.tlogs.iter().find(|log| log.log_id == log_id)
    }

    /// The CT log whose id is `log_id`.
    pub fn ctlog(&self, log_id: &[u8]) -> Option<&TransparencyLog> {
        self.ctlogs.iter().find(|log| log.log_id == log_id)
    }
}

const PRODUCTION: &[u8] = include_bytes!("../../trusted-roots/sigstore-public-good.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootDoc {
    #[serde(alias = "media_type")]
    media_type: String,
    #[serde(default)]
    tlogs: Vec<LogDoc>,
    #[serde(default, alias = "certificate_authorities")]
    certificate_authorities: Vec<AuthorityDoc>,
    #[serde(default)]
    ctlogs: Vec<LogDoc>,
    #[serde(default, alias = "timestamp_authorities")]
    timestamp_authorities: Vec<AuthorityDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogDoc {
    #[serde(alias = "base_url")]
    base_url: String,
    #[serde(default, alias = "hash_algorithm")]
    hash_algorithm: Option<String>,
    #[serde(alias = "public_key")]
    public_key: PublicKeyDoc,
    #[serde(alias = "log_id")]
    log_id: LogIdDoc,
    #[serde(default, alias = "checkpoint_key_id")]
    checkpoint_key_id: Option<LogIdDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyDoc {
    #[serde(alias = "raw_bytes")]
    raw_bytes: String,
    #[serde(alias = "key_details")]
    key_details: String,
    #[serde(default, alias = "valid_for")]
    valid_for: Option<TimeRangeDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdDoc {
    #[serde(alias = "key_id")]
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityDoc {
    #[serde(default)]
    subject: Option<SubjectDoc>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(alias = "cert_chain")]
    cert_chain: ChainDoc,
    #[serde(default, alias = "valid_for")]
    valid_for: Option<TimeRangeDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubjectDoc {
    #[serde(default)]
    organization: Option<String>,
    #[serde(default, alias = "common_name")]
    common_name: Option<String>,
}

#[derive(Deserialize)]
struct ChainDoc {
    certificates: Vec<CertificateDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertificateDoc {
    #[serde(alias = "raw_bytes")]
    raw_bytes: String,
}

#[derive(Deserialize)]
struct TimeRangeDoc {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

fn read_logs(list: &str, docs: Vec<LogDoc>, skipped: &mut Vec<String>) -> Result<Vec<TransparencyLog>, PkiError> {
    let mut logs = Vec::with_capacity(docs.len());
    for doc in docs {
        let what = format!("{list} entry {:?}", short(&doc.base_url));
        let validity = read_validity(&what, doc.public_key.valid_for.as_ref())?;
        let log_id = base64(&what, &doc.log_id.key_id)?;
        let checkpoint_key_id = doc.checkpoint_key_id.map(|id| base64(&what, &id.key_id)).transpose()?;
        let raw = base64(&what, &doc.public_key.raw_bytes)?;
        let Some(hash_algorithm) = read_hash(doc.hash_algorithm.as_deref()) else {
            skipped.push(format!("{what}: unsupported hash algorithm"));
            continue;
        };
        let key = match read_key(&doc.public_key.key_details, &raw) {
            Ok(key) => key,
            Err(e) => {
                skipped.push(format!("{what}: {e}"));
                continue;
            }
        };
        logs.push(TransparencyLog { base_url: doc.base_url, log_id, key, validity, hash_algorithm, checkpoint_key_id });
    }
    Ok(logs)
}

/// A key as the trusted root describes it: PKIX (SPKI DER) for EC and Ed25519 keys, bare PKCS#1 for
/// `PKCS1_RSA_*`, a PKIX `PKIX_RSA_*` key as SPKI DER.
fn read_key(details: &str, raw: &[u8]) -> Result<VerifyingKey, PkiError> {
    match details {
        "PKCS1_RSA_PKCS1V5" => VerifyingKey::from_pkcs1_rsa_der(raw),
        "PKIX_ECDSA_P256_SHA_256"
        | "PKIX_ECDSA_P384_SHA_384"
        | "PKIX_ED25519"
        | "PKIX_RSA_PKCS1V15_2048_SHA256"
        | "PKIX_RSA_PKCS1V15_3072_SHA256"
        | "PKIX_RSA_PKCS1V15_4096_SHA256"
        | "PKIX_RSA_PKCS1V5" => VerifyingKey::from_spki_der(raw),
        other => Err(PkiError::Key(format!("unsupported key details {:?}", short(other)))),
    }
}

fn read_hash(name: Option<&str>) -> Option<HashAlgorithm> {
    match name {
        None | Some("SHA2_256") => Some(HashAlgorithm::Sha256),
        Some("SHA2_384") => Some(HashAlgorithm::Sha384),
        Some("SHA2_512") => Some(HashAlgorithm::Sha512),
        Some(_) => None,
    }
}

fn read_authorities(list: &str, docs: Vec<AuthorityDoc>) -> Result<Vec<CertificateAuthority>, PkiError> {
    docs.into_iter()
        .map(|doc| {
            let name = authority_name(&doc);
            let what = format!("{list} entry {:?}", short(&name));
            let validity = read_validity(&what, doc.valid_for.as_ref())?;
            let chain = doc.cert_chain.certificates;
            if chain.is_empty() || chain.len() > MAX_CHAIN {
                return Err(fail(format!("{what}: {} certificates (1 to {MAX_CHAIN} accepted)", chain.len())));
            }
            let certificates =
                chain.iter().map(|cert| base64(&what, &cert.raw_bytes)).collect::<Result<Vec<_>, _>>()?;
            Ok(CertificateAuthority { name, certificates, validity })
        })
        .collect()
}

fn authority_name(doc: &AuthorityDoc) -> String {
    let subject = doc.subject.as_ref();
    doc.uri
        .clone()
        .filter(|uri| !uri.is_empty())
        .or_else(|| subject.and_then(|s| s.common_name.clone()))
        .or_else(|| subject.and_then(|s| s.organization.clone()))
        .unwrap_or_else(|| "unnamed authority".into())
}

/// A window must name its start: a missing bound is a malformed root, not an unbounded one.
fn read_validity(what: &str, range: Option<&TimeRangeDoc>) -> Result<Validity, PkiError> {
    let Some(start) = range.and_then(|r| r.start.as_deref()) else {
        return Err(fail(format!("{what}: validFor has no start")));
    };
    let start = read_time(what, start)?;
    let end = range.and_then(|r| r.end.as_deref()).map(|end| read_time(what, end)).transpose()?;
    if end.is_some_and(|end| end < start) {
        return Err(fail(format!("{what}: validFor ends before it starts")));
    }
    Ok(Validity { start, end })
}

fn read_time(what: &str, text: &str) -> Result<OffsetDateTime, PkiError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| fail(format!("{what}: {:?} is not an RFC 3339 time", short(text))))
}

fn base64(what: &str, text: &str) -> Result<Vec<u8>, PkiError> {
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| fail(format!("{what}: bytes are not base64")))
}

/// At most 80 characters of an attacker-supplied string, for messages.
fn short(text: &str) -> String {
    text.chars().take(80).collect()
}

fn fail(message: String) -> PkiError {
    PkiError::TrustedRoot(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFORMANCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party/sigstore-conformance");

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(format!("{CONFORMANCE}/{path}")).unwrap()
    }

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    fn edit(path: &str, change: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut doc: serde_json::Value = serde_json::from_slice(&fixture(path)).unwrap();
        change(&mut doc);
        serde_json::to_vec(&doc).unwrap()
    }

    #[test]
    fn the_shipped_production_root_reads_whole() {
        let root = TrustedRoot::production();
        assert_eq!(root.certificate_authorities.len(), 2);
        assert!(!root.tlogs.is_empty() && !root.ctlogs.is_empty() && !root.timestamp_authorities.is_empty());
        assert!(root.skipped.is_empty(), "{:?}", root.skipped);
        let rekor = &root.tlogs[0];
        assert_eq!(rekor.base_url, "https://rekor.sigstore.dev");
        assert_eq!(rekor.log_id, rekor.key.key_id());
        assert!(root.tlog(&rekor.log_id).is_some());
    }

    #[test]
    fn every_conformance_root_reads_but_the_one_with_a_missing_start() {
        let cases = std::fs::read_dir(format!("{CONFORMANCE}/bundle-verify")).unwrap();
        let mut read = 0;
        for case in cases {
            let path = case.unwrap().path().join("trusted_root.json");
            let Ok(bytes) = std::fs::read(&path) else { continue };
            let result = TrustedRoot::parse(&bytes);
            if path.to_string_lossy().contains("trust-root-tlog-missing-validity-start_fail") {
                let err = result.unwrap_err().to_string();
                assert!(err.contains("validFor has no start"), "{err}");
            } else {
                let root = result.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(root.skipped.is_empty(), "{:?}", root.skipped);
                read += 1;
            }
        }
        assert!(read >= 30, "{read}");
        TrustedRoot::parse(&fixture("staging-trusted_root.json")).unwrap();
    }

    #[test]
    fn the_v0_2_media_type_and_snake_case_names_are_read_and_an_unknown_media_type_is_not() {
        let v2 = edit("production-trusted_root.json", |doc| {
            doc["mediaType"] = "application/vnd.dev.sigstore.trustedroot.v0.2+json".into();
        });
        TrustedRoot::parse(&v2).unwrap();
        let snake = String::from_utf8(fixture("production-trusted_root.json"))
            .unwrap()
            .replace("\"mediaType\"", "\"media_type\"")
            .replace("\"rawBytes\"", "\"raw_bytes\"")
            .replace("\"validFor\"", "\"valid_for\"")
            .replace("\"certificateAuthorities\"", "\"certificate_authorities\"");
        assert_eq!(TrustedRoot::parse(snake.as_bytes()).unwrap().certificate_authorities.len(), 2);
        let unknown = edit("production-trusted_root.json", |doc| {
            doc["mediaType"] = "application/vnd.dev.sigstore.trustedroot+json;version=0.3".into();
        });
        assert!(TrustedRoot::parse(&unknown).unwrap_err().to_string().contains("unknown media type"));
    }

    #[test]
    fn validity_end_is_inclusive_and_start_is_required() {
        let root =
            TrustedRoot::parse(&fixture("bundle-verify/trust-root-tsa-validity-end-inclusive/trusted_root.json"))
                .unwrap();
        let tsa = root.timestamp_authorities[0].validity;
        let end = at("2025-06-12T12:02:20Z");
        assert_eq!(tsa.end, Some(end));
        assert!(tsa.contains(end));
        assert!(!tsa.contains(end + time::Duration::seconds(1)));
        assert!(!tsa.contains(tsa.start - time::Duration::seconds(1)));

        let no_range = edit("production-trusted_root.json", |doc| {
            doc["certificateAuthorities"][0].as_object_mut().unwrap().remove("validFor");
        });
        assert!(TrustedRoot::parse(&no_range).unwrap_err().to_string().contains("validFor has no start"));
        let backwards = edit("production-trusted_root.json", |doc| {
            doc["tlogs"][0]["publicKey"]["validFor"]["end"] = "2020-01-01T00:00:00Z".into();
        });
        assert!(TrustedRoot::parse(&backwards).unwrap_err().to_string().contains("ends before it starts"));
    }

    #[test]
    fn an_unsupported_log_key_is_skipped_with_a_note_but_a_malformed_document_is_refused() {
        let odd_key = edit("production-trusted_root.json", |doc| {
            doc["ctlogs"][0]["publicKey"]["keyDetails"] = "PKIX_ECDSA_P521_SHA_512".into();
        });
        let root = TrustedRoot::parse(&odd_key).unwrap();
        assert_eq!(root.skipped.len(), 1);
        assert!(root.skipped[0].contains("unsupported key details"), "{:?}", root.skipped);

        let bad_base64 = edit("production-trusted_root.json", |doc| {
            doc["tlogs"][0]["logId"]["keyId"] = "!!".into();
        });
        assert!(TrustedRoot::parse(&bad_base64).is_err());
        assert!(TrustedRoot::parse(b"{").is_err());
        let empty_chain = edit("production-trusted_root.json", |doc| {
            doc["certificateAuthorities"][0]["certChain"]["certificates"] = serde_json::json!([]);
        });
        assert!(TrustedRoot::parse(&empty_chain).is_err());
    }

    #[test]
    fn a_document_over_the_size_bound_is_refused_unread() {
        let mut big = fixture("production-trusted_root.json");
        big.resize(MAX_DOCUMENT_BYTES + 1, b' ');
        assert!(TrustedRoot::parse(&big).unwrap_err().to_string().contains("more than the"));
    }
}

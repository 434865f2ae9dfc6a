//! Notary Project signatures (docs/FORMATS.md §20): the signature envelope, JWS JSON serialization
//! (`application/jose+json`) or COSE_Sign1 (`application/cose`), over a payload naming the signed artifact by
//! its OCI descriptor, with an X.509 chain and an optional RFC 3161 countersignature; and the OCI referrer
//! manifest that stores one envelope about an image.
//!
//! Owns: reading an envelope into [`NotaryEnvelope`] within fixed bounds (what was signed, the exact signing
//! input, the headers as written), building a JWS around a signature the caller computed, and the referrer
//! manifest. Must not touch: whether the signature, chain or times are good (src/pki/notary.rs judges), keys.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ciborium::Value as Cbor;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Digest as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::FormatError;
use super::referrer::{EMPTY_JSON, OCI_EMPTY};
use super::signature_manifest::{Descriptor, SignatureManifest};

/// The artifact type of a Notary Project signature referrer.
pub const NOTARY_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
pub const JWS_ENVELOPE: &str = "application/jose+json";
pub const COSE_ENVELOPE: &str = "application/cose";
/// The content type of the signed payload.
pub const NOTARY_PAYLOAD: &str = "application/vnd.cncf.notary.payload.v1+json";
/// The referrer annotation listing the SHA-256 of each certificate of the chain (a JSON list, leaf first).
pub const THUMBPRINT_ANNOTATION: &str = "io.cncf.notary.x509chain.thumbprint#S256";

pub const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub const EXPIRY: &str = "io.cncf.notary.expiry";
pub const VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
pub const VERIFICATION_PLUGIN_MIN_VERSION: &str = "io.cncf.notary.verificationPluginMinVersion";
pub const SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
pub const TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";

/// An envelope larger than this is refused unread (a three-certificate chain with a timestamp is ~8 KiB).
pub const MAX_ENVELOPE_BYTES: usize = 256 * 1024;
/// At most this many certificates in `x5c` / `x5chain`.
pub const MAX_CHAIN: usize = 10;
/// The largest certificate, protected header, payload or timestamp token accepted.
pub const MAX_PART_BYTES: usize = 64 * 1024;
/// At most this many protected header parameters.
const MAX_HEADERS: usize = 32;

/// COSE header labels (RFC 9052 §3.1, RFC 9360 §2).
const COSE_ALG: i128 = 1;
const COSE_CRIT: i128 = 2;
const COSE_CONTENT_TYPE: i128 = 3;
const COSE_X5CHAIN: i128 = 33;
const COSE_SIGN1_TAG: u64 = 18;
/// CBOR tag 1: epoch-based date/time (RFC 8949 §3.4.2).
const CBOR_EPOCH_TIME: u64 = 1;

/// The two envelope encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeFormat {
    Jws,
    Cose,
}

impl EnvelopeFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jws => JWS_ENVELOPE,
            Self::Cose => COSE_ENVELOPE,
        }
    }

    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            JWS_ENVELOPE => Some(Self::Jws),
            COSE_ENVELOPE => Some(Self::Cose),
            _ => None,
        }
    }
}

/// The signature algorithms the Notary Project allows (RSASSA-PSS and ECDSA, each with its hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
}

impl Algorithm {
    const ALL: [Self; 6] = [Self::Ps256, Self::Ps384, Self::Ps512, Self::Es256, Self::Es384, Self::Es512];

    /// The JWS `alg` name.
    pub fn jws_name(self) -> &'static str {
        match self {
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
        }
    }

    /// The COSE algorithm identifier (IANA COSE Algorithms registry).
    pub fn cose_id(self) -> i64 {
        match self {
            Self::Ps256 => -37,
            Self::Ps384 => -38,
            Self::Ps512 => -39,
            Self::Es256 => -7,
            Self::Es384 => -35,
            Self::Es512 => -36,
        }
    }

    pub fn from_jws_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.jws_name() == name)
    }

    pub fn from_cose_id(id: i128) -> Option<Self> {
        Self::ALL.into_iter().find(|a| i128::from(a.cose_id()) == id)
    }

    /// For ECDSA, the length of one of r and s in the fixed-size `r‖s` signature both envelopes carry.
    pub fn ecdsa_scalar_len(self) -> Option<usize> {
        match self {
            Self::Es256 => Some(32),
            Self::Es384 => Some(48),
            Self::Es512 => Some(66),
            Self::Ps256 | Self::Ps384 | Self::Ps512 => None,
        }
    }
}

/// `io.cncf.notary.signingScheme`: who vouches for the signing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningScheme {
    /// `notary.x509`: the signer's claimed `signingTime`; trust store type `ca`.
    X509,
    /// `notary.x509.signingAuthority`: the signing authority's `authenticSigningTime`; trust store type
    /// `signingAuthority`.
    X509SigningAuthority,
}

impl SigningScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X509 => "notary.x509",
            Self::X509SigningAuthority => "notary.x509.signingAuthority",
        }
    }

    fn parse(text: &str) -> Result<Self, FormatError> {
        match text {
            "notary.x509" => Ok(Self::X509),
            "notary.x509.signingAuthority" => Ok(Self::X509SigningAuthority),
            _ => Err(malformed("the signing scheme is neither notary.x509 nor notary.x509.signingAuthority")),
        }
    }
}

/// The Notary Project parameters of the protected header, as written (both envelope formats).
#[derive(Debug, Clone, PartialEq)]
pub struct SignedHeaders {
    /// The content type (`cty` / label 3); a verifier requires [`NOTARY_PAYLOAD`].
    pub content_type: String,
    pub signing_scheme: SigningScheme,
    /// `io.cncf.notary.signingTime`, present under `notary.x509`.
    pub signing_time: Option<OffsetDateTime>,
    /// `io.cncf.notary.authenticSigningTime`, present under `notary.x509.signingAuthority`.
    pub authentic_signing_time: Option<OffsetDateTime>,
    pub expiry: Option<OffsetDateTime>,
    /// `crit` as written.
    pub critical: Vec<String>,
    /// The names of every protected header parameter present (COSE integer labels as decimal text).
    pub protected_names: Vec<String>,
    pub verification_plugin: Option<String>,
}

impl SignedHeaders {
    /// Reads the parameters through the format's accessors for text and time values.
    fn read(
        content_type: Option<String>,
        critical: Vec<String>,
        protected_names: Vec<String>,
        text: impl Fn(&str) -> Result<Option<String>, FormatError>,
        time: impl Fn(&str) -> Result<Option<OffsetDateTime>, FormatError>,
    ) -> Result<Self, FormatError> {
        let scheme = text(SIGNING_SCHEME)?.ok_or_else(|| malformed("no io.cncf.notary.signingScheme"))?;
        Ok(Self {
            content_type: content_type.unwrap_or_default(),
            signing_scheme: SigningScheme::parse(&scheme)?,
            signing_time: time(SIGNING_TIME)?,
            authentic_signing_time: time(AUTHENTIC_SIGNING_TIME)?,
            expiry: time(EXPIRY)?,
            critical,
            protected_names,
            verification_plugin: text(VERIFICATION_PLUGIN)?,
        })
    }
}

/// A parsed envelope: everything a verifier needs, nothing judged yet.
#[derive(Debug, Clone, PartialEq)]
pub struct NotaryEnvelope {
    pub format: EnvelopeFormat,
    pub algorithm: Algorithm,
    pub headers: SignedHeaders,
    /// DER certificates, leaf first.
    pub certificate_chain: Vec<Vec<u8>>,
    pub signing_agent: Option<String>,
    /// The RFC 3161 TimeStampToken over [`Self::signature`], if the signer asked a TSA.
    pub timestamp_signature: Option<Vec<u8>>,
    /// The payload's bytes as signed.
    pub payload: Vec<u8>,
    pub target_artifact: Descriptor,
    /// The exact bytes the signature covers: the JWS signing input, or COSE's `Sig_structure`.
    pub signing_input: Vec<u8>,
    /// The signature value (ECDSA as fixed-size `r‖s`, RSASSA-PSS as the RSA block).
    pub signature: Vec<u8>,
}

impl NotaryEnvelope {
    /// Reads an envelope blob of the given layer media type.
    pub fn parse(media_type: &str, bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(malformed(format!("{} bytes, more than the {MAX_ENVELOPE_BYTES} accepted", bytes.len())));
        }
        match EnvelopeFormat::from_media_type(media_type) {
            Some(EnvelopeFormat::Jws) => parse_jws(bytes),
            Some(EnvelopeFormat::Cose) => parse_cose(bytes),
            None => Err(malformed(format!("{:?} is not a Notary Project envelope media type", short(media_type)))),
        }
    }

    /// The signing time the scheme names (`signingTime` or `authenticSigningTime`).
    pub fn scheme_signing_time(&self) -> Option<OffsetDateTime> {
        match self.headers.signing_scheme {
            SigningScheme::X509 => self.headers.signing_time,
            SigningScheme::X509SigningAuthority => self.headers.authentic_signing_time,
        }
    }
}

/// The SHA-256 thumbprints (lowercase hex) of a DER chain, as the referrer annotation lists them.
pub fn chain_thumbprints(chain: &[Vec<u8>]) -> Vec<String> {
    chain.iter().map(|der| hex(&sha2::Sha256::digest(der))).collect()
}

/// The referrer manifest for one envelope about `subject`: artifact type [`NOTARY_SIGNATURE`], the OCI empty
/// config, one layer of the envelope's media type, the chain thumbprints and, if given, the creation time.
impl SignatureManifest {
    pub fn for_notary_signature(
        subject: Descriptor,
        format: EnvelopeFormat,
        envelope: &[u8],
        chain: &[Vec<u8>],
        created: Option<&str>,
    ) -> Self {
        let config = Descriptor::for_blob(OCI_EMPTY, EMPTY_JSON);
        let mut manifest = Self::new(config, vec![Descriptor::for_blob(format.media_type(), envelope)]);
        let thumbprints = serde_json::to_string(&chain_thumbprints(chain)).unwrap_or_else(|_| "[]".to_owned());
        manifest.annotations.insert(THUMBPRINT_ANNOTATION.to_owned(), thumbprints);
        if let Some(created) = created {
            manifest.annotations.insert(super::referrer::CREATED_ANNOTATION.to_owned(), created.to_owned());
        }
        manifest.subject = Some(subject);
        manifest.artifact_type = Some(NOTARY_SIGNATURE.to_owned());
        manifest
    }

    /// Whether this manifest is a Notary Project signature: by `artifactType`, or by the config media type
    /// (the OCI 1.1 fallback notation writes when the registry has no referrers API).
    pub fn is_notary_signature(&self) -> bool {
        self.index_artifact_type() == NOTARY_SIGNATURE
    }

    /// The one envelope layer of a Notary Project signature manifest, with its format.
    pub fn notary_envelope_layer(&self) -> Result<(EnvelopeFormat, &Descriptor), FormatError> {
        let [layer] = self.layers.as_slice() else {
            return Err(malformed(format!("a signature manifest has {} layers, expected one", self.layers.len())));
        };
        let format = EnvelopeFormat::from_media_type(&layer.media_type)
            .ok_or_else(|| malformed(format!("layer media type {:?} is not an envelope", short(&layer.media_type))))?;
        if layer.size > MAX_ENVELOPE_BYTES as u64 {
            return Err(malformed(format!("the envelope layer has {} bytes, more than accepted", layer.size)));
        }
        Ok((format, layer))
    }
}

/// What a JWS signs, built before the signature: the caller signs [`JwsToSign::signing_input`] with the
/// algorithm named, then [`JwsToSign::finish`] wraps the signature, chain and unsigned headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwsToSign {
    protected: String,
    payload: String,
}

/// The signed claims of a JWS built here (scheme `notary.x509`).
#[derive(Debug, Clone)]
pub struct JwsClaims<'a> {
    pub target: &'a Descriptor,
    pub algorithm: Algorithm,
    pub signing_time: OffsetDateTime,
    pub expiry: Option<OffsetDateTime>,
}

impl JwsToSign {
    pub fn new(claims: &JwsClaims<'_>) -> Result<Self, FormatError> {
        let mut critical = vec![SIGNING_SCHEME];
        let mut header = Map::new();
        header.insert("alg".into(), claims.algorithm.jws_name().into());
        header.insert("cty".into(), NOTARY_PAYLOAD.into());
        header.insert(SIGNING_SCHEME.into(), SigningScheme::X509.as_str().into());
        header.insert(SIGNING_TIME.into(), rfc3339(claims.signing_time)?.into());
        if let Some(expiry) = claims.expiry {
            critical.push(EXPIRY);
            header.insert(EXPIRY.into(), rfc3339(expiry)?.into());
        }
        header.insert("crit".into(), json!(critical));
        let target = json!({"mediaType": claims.target.media_type, "digest": claims.target.digest,
            "size": claims.target.size});
        let payload = json!({"targetArtifact": target});
        Ok(Self {
            protected: URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
            payload: URL_SAFE_NO_PAD.encode(payload.to_string()),
        })
    }

    /// `BASE64URL(protected) '.' BASE64URL(payload)`: the bytes to sign (RFC 7515 §5.1).
    pub fn signing_input(&self) -> Vec<u8> {
        format!("{}.{}", self.protected, self.payload).into_bytes()
    }

    /// The JWS JSON serialization: `signature` (ECDSA fixed-size `r‖s`, see [`ecdsa_der_to_fixed`]), the
    /// chain (DER, leaf first) in `x5c`, the signing agent and an optional RFC 3161 token over `signature`.
    pub fn finish(self, signature: &[u8], chain: &[Vec<u8>], signing_agent: &str, timestamp: Option<&[u8]>) -> Vec<u8> {
        let x5c: Vec<String> = chain.iter().map(|der| STANDARD.encode(der)).collect();
        let mut header = json!({"x5c": x5c, SIGNING_AGENT: signing_agent});
        if let Some(token) = timestamp {
            header[TIMESTAMP_SIGNATURE] = STANDARD.encode(token).into();
        }
        let envelope = json!({"payload": self.payload, "protected": self.protected, "header": header,
            "signature": URL_SAFE_NO_PAD.encode(signature)});
        envelope.to_string().into_bytes()
    }
}

/// Converts a DER `ECDSA-Sig-Value` (what most signers return) into the fixed-size `r‖s` form JWS and COSE
/// carry, for `algorithm`.
pub fn ecdsa_der_to_fixed(algorithm: Algorithm, der: &[u8]) -> Result<Vec<u8>, FormatError> {
    use der::Decode as _;
    #[derive(der::Sequence)]
    struct EcdsaSig<'a> {
        r: der::asn1::UintRef<'a>,
        s: der::asn1::UintRef<'a>,
    }
    let Some(len) = algorithm.ecdsa_scalar_len() else {
        return Err(malformed(format!("{} is not an ECDSA algorithm", algorithm.jws_name())));
    };
    let sig = EcdsaSig::from_der(der).map_err(|_| malformed("the ECDSA signature is not DER"))?;
    let mut fixed = Vec::with_capacity(2 * len);
    for part in [sig.r.as_bytes(), sig.s.as_bytes()] {
        if part.len() > len {
            return Err(malformed("an ECDSA signature value is longer than the curve allows"));
        }
        fixed.extend(std::iter::repeat_n(0, len - part.len()));
        fixed.extend_from_slice(part);
    }
    Ok(fixed)
}

#[derive(Deserialize)]
struct JwsJson {
    payload: String,
    protected: String,
    #[serde(default)]
    header: JwsUnprotected,
    signature: String,
}

#[derive(Deserialize, Default)]
struct JwsUnprotected {
    #[serde(default)]
    x5c: Vec<String>,
    #[serde(rename = "io.cncf.notary.signingAgent")]
    signing_agent: Option<String>,
    #[serde(rename = "io.cncf.notary.timestampSignature")]
    timestamp_signature: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "targetArtifact")]
    target_artifact: Descriptor,
}

fn parse_jws(bytes: &[u8]) -> Result<NotaryEnvelope, FormatError> {
    let jws: JwsJson = serde_json::from_slice(bytes).map_err(|e| malformed(format!("JWS: {e}")))?;
    let protected_json = bounded_b64url(&jws.protected, "protected header")?;
    let header: Map<String, Value> = serde_json::from_slice(&protected_json)
        .map_err(|_| malformed("the JWS protected header is not a JSON object"))?;
    if header.len() > MAX_HEADERS {
        return Err(malformed(format!("{} protected headers, more than the {MAX_HEADERS} accepted", header.len())));
    }
    let text = |name: &str| -> Result<Option<String>, FormatError> {
        match header.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(malformed(format!("the protected header {name} is not a string"))),
        }
    };
    let time = |name: &str| -> Result<Option<OffsetDateTime>, FormatError> {
        text(name)?
            .map(|t| OffsetDateTime::parse(&t, &Rfc3339).map_err(|_| malformed(format!("{name} is not RFC 3339"))))
            .transpose()
    };
    let alg = text("alg")?.ok_or_else(|| malformed("the JWS has no alg"))?;
    let algorithm =
        Algorithm::from_jws_name(&alg).ok_or_else(|| malformed(format!("unsupported JWS alg {:?}", short(&alg))))?;
    let critical = match header.get("crit") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| malformed("crit lists a non-string")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(malformed("crit is not a list")),
    };
    let headers = SignedHeaders::read(text("cty")?, critical, header.keys().cloned().collect(), text, time)?;
    let payload = bounded_b64url(&jws.payload, "payload")?;
    let certificate_chain =
        jws.header.x5c.iter().map(|c| bounded_b64(c, "x5c certificate")).collect::<Result<_, _>>()?;
    let envelope = NotaryEnvelope {
        format: EnvelopeFormat::Jws,
        algorithm,
        headers,
        certificate_chain: check_chain(certificate_chain)?,
        signing_agent: jws.header.signing_agent.map(|a| short(&a)),
        timestamp_signature: jws.header.timestamp_signature.map(|t| bounded_b64(&t, "timestamp")).transpose()?,
        target_artifact: target_of(&payload)?,
        payload,
        signing_input: format!("{}.{}", jws.protected, jws.payload).into_bytes(),
        signature: bounded_b64url(&jws.signature, "signature")?,
    };
    Ok(envelope)
}

fn parse_cose(bytes: &[u8]) -> Result<NotaryEnvelope, FormatError> {
    let value: Cbor = ciborium::from_reader(bytes).map_err(|_| malformed("COSE: not CBOR"))?;
    let Cbor::Tag(COSE_SIGN1_TAG, inner) = value else {
        return Err(malformed("COSE: not a tagged COSE_Sign1 (tag 18)"));
    };
    let Cbor::Array(parts) = *inner else {
        return Err(malformed("COSE_Sign1 is not an array"));
    };
    let [Cbor::Bytes(protected_raw), Cbor::Map(unprotected), Cbor::Bytes(payload), Cbor::Bytes(signature)] =
        parts.as_slice()
    else {
        return Err(malformed("COSE_Sign1 is not [protected bstr, unprotected map, payload bstr, signature bstr]"));
    };
    if protected_raw.len() > MAX_PART_BYTES || payload.len() > MAX_PART_BYTES {
        return Err(malformed("a COSE protected header or payload is larger than accepted"));
    }
    let protected: Cbor = ciborium::from_reader(protected_raw.as_slice())
        .map_err(|_| malformed("the COSE protected header is not CBOR"))?;
    let Cbor::Map(protected) = protected else {
        return Err(malformed("the COSE protected header is not a map"));
    };
    let protected = labelled(&protected, "protected")?;
    let unprotected = labelled(unprotected, "unprotected")?;
    if protected.len() > MAX_HEADERS {
        return Err(malformed(format!("{} protected headers, more than the {MAX_HEADERS} accepted", protected.len())));
    }
    let alg = match protected.get(&COSE_ALG.to_string()) {
        Some(Cbor::Integer(id)) => i128::from(*id),
        _ => return Err(malformed("the COSE envelope has no integer alg (label 1)")),
    };
    let algorithm = Algorithm::from_cose_id(alg).ok_or_else(|| malformed(format!("unsupported COSE alg {alg}")))?;
    let text = |map: &BTreeMap<String, Cbor>, name: &str| -> Result<Option<String>, FormatError> {
        match map.get(name) {
            None => Ok(None),
            Some(Cbor::Text(s)) => Ok(Some(s.clone())),
            Some(_) => Err(malformed(format!("the COSE header {name} is not a text string"))),
        }
    };
    let time = |name: &str| -> Result<Option<OffsetDateTime>, FormatError> {
        protected.get(name).map(|v| cose_time(v, name)).transpose()
    };
    let critical = match protected.get(&COSE_CRIT.to_string()) {
        None => Vec::new(),
        Some(Cbor::Array(items)) => items.iter().map(cose_label).collect::<Result<_, _>>()?,
        Some(_) => return Err(malformed("crit (label 2) is not an array")),
    };
    let content_type = text(&protected, &COSE_CONTENT_TYPE.to_string())?;
    let names = protected.keys().cloned().collect();
    let headers = SignedHeaders::read(content_type, critical, names, |name| text(&protected, name), time)?;
    let chain = match unprotected.get(&COSE_X5CHAIN.to_string()) {
        None => Vec::new(),
        Some(Cbor::Bytes(der)) => vec![der.clone()],
        Some(Cbor::Array(items)) => items
            .iter()
            .map(|item| match item {
                Cbor::Bytes(der) => Ok(der.clone()),
                _ => Err(malformed("x5chain (label 33) holds a non-bstr")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(malformed("x5chain (label 33) is neither a bstr nor an array")),
    };
    let timestamp_signature = match unprotected.get(TIMESTAMP_SIGNATURE) {
        None => None,
        Some(Cbor::Bytes(token)) if token.len() <= MAX_PART_BYTES => Some(token.clone()),
        Some(_) => return Err(malformed("the timestamp signature is not a bstr of accepted size")),
    };
    let signing_input = cose_signing_input(protected_raw, payload)?;
    Ok(NotaryEnvelope {
        format: EnvelopeFormat::Cose,
        algorithm,
        headers,
        certificate_chain: check_chain(chain)?,
        signing_agent: text(&unprotected, SIGNING_AGENT)?.map(|a| short(&a)),
        timestamp_signature,
        target_artifact: target_of(payload)?,
        payload: payload.clone(),
        signing_input,
        signature: signature.clone(),
    })
}

/// `Sig_structure = ["Signature1", body_protected, external_aad = h'', payload]` (RFC 9052 §4.4).
fn cose_signing_input(protected: &[u8], payload: &[u8]) -> Result<Vec<u8>, FormatError> {
    let structure = Cbor::Array(vec![
        Cbor::Text("Signature1".into()),
        Cbor::Bytes(protected.to_vec()),
        Cbor::Bytes(Vec::new()),
        Cbor::Bytes(payload.to_vec()),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&structure, &mut out).map_err(|_| malformed("Sig_structure does not encode"))?;
    Ok(out)
}

/// A COSE header map keyed by label text (integers in decimal); a repeated label is refused.
fn labelled(map: &[(Cbor, Cbor)], which: &str) -> Result<BTreeMap<String, Cbor>, FormatError> {
    let mut out = BTreeMap::new();
    for (label, value) in map {
        if out.insert(cose_label(label)?, value.clone()).is_some() {
            return Err(malformed(format!("the COSE {which} header repeats a label")));
        }
    }
    Ok(out)
}

fn cose_label(label: &Cbor) -> Result<String, FormatError> {
    match label {
        Cbor::Integer(i) => Ok(i128::from(*i).to_string()),
        Cbor::Text(t) if t.len() <= 256 => Ok(t.clone()),
        _ => Err(malformed("a COSE header label is neither an integer nor a short text")),
    }
}

/// A time under CBOR tag 1 with integer seconds, as notation writes it.
fn cose_time(value: &Cbor, name: &str) -> Result<OffsetDateTime, FormatError> {
    let Cbor::Tag(CBOR_EPOCH_TIME, inner) = value else {
        return Err(malformed(format!("{name} is not a tag-1 epoch time")));
    };
    let Cbor::Integer(seconds) = **inner else {
        return Err(malformed(format!("{name} is not integer seconds")));
    };
    i64::try_from(i128::from(seconds))
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| malformed(format!("{name} is out of range")))
}

fn target_of(payload: &[u8]) -> Result<Descriptor, FormatError> {
    let payload: Payload =
        serde_json::from_slice(payload).map_err(|e| malformed(format!("the payload has no targetArtifact: {e}")))?;
    Ok(payload.target_artifact)
}

fn check_chain(chain: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, FormatError> {
    if chain.is_empty() {
        return Err(malformed("the envelope carries no certificate chain"));
    }
    if chain.len() > MAX_CHAIN {
        return Err(malformed(format!("{} certificates, more than the {MAX_CHAIN} accepted", chain.len())));
    }
    if chain.iter().any(|der| der.len() > MAX_PART_BYTES) {
        return Err(malformed("a certificate is larger than accepted"));
    }
    Ok(chain)
}

fn bounded_b64url(text: &str, what: &str) -> Result<Vec<u8>, FormatError> {
    if text.len() > MAX_PART_BYTES * 4 / 3 + 4 {
        return Err(malformed(format!("the {what} is larger than accepted")));
    }
    URL_SAFE_NO_PAD.decode(text).map_err(|_| malformed(format!("the {what} is not unpadded base64url")))
}

fn bounded_b64(text: &str, what: &str) -> Result<Vec<u8>, FormatError> {
    if text.len() > MAX_PART_BYTES * 4 / 3 + 4 {
        return Err(malformed(format!("the {what} is larger than accepted")));
    }
    STANDARD.decode(text).map_err(|_| malformed(format!("the {what} is not base64")))
}

fn rfc3339(at: OffsetDateTime) -> Result<String, FormatError> {
    at.format(&Rfc3339).map_err(|_| malformed("a time cannot be written as RFC 3339"))
}

/// At most 128 characters of text the envelope carries, for messages and fields kept.
fn short(text: &str) -> String {
    text.chars().take(128).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn malformed(reason: impl Into<String>) -> FormatError {
    FormatError::malformed("Notary Project signature", reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::Digest;
    use crate::formats::signature_manifest::OCI_MANIFEST;

    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/third-party/notation-1.3/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn image() -> Descriptor {
        Descriptor::for_blob(OCI_MANIFEST, &fixture("image-manifest.json"))
    }

    #[test]
    fn reads_notations_jws_with_its_chain_times_and_target() {
        let envelope = NotaryEnvelope::parse(JWS_ENVELOPE, &fixture("chain.jws")).unwrap();
        assert_eq!(envelope.format, EnvelopeFormat::Jws);
        assert_eq!(envelope.algorithm, Algorithm::Es256);
        assert_eq!(envelope.headers.content_type, NOTARY_PAYLOAD);
        assert_eq!(envelope.headers.signing_scheme, SigningScheme::X509);
        assert_eq!(envelope.headers.critical, [SIGNING_SCHEME, EXPIRY]);
        let (signed, expiry) = (envelope.headers.signing_time.unwrap(), envelope.headers.expiry.unwrap());
        assert_eq!(expiry - signed, time::Duration::hours(48));
        assert_eq!(envelope.certificate_chain.len(), 3);
        assert_eq!(envelope.signing_agent.as_deref(), Some("notation-go/1.3.2"));
        assert_eq!(envelope.timestamp_signature, None);
        let target = image();
        assert_eq!(
            (&envelope.target_artifact.digest, envelope.target_artifact.size, &envelope.target_artifact.media_type),
            (&target.digest, target.size, &target.media_type)
        );
        assert_eq!(envelope.signature.len(), 64);
        assert!(envelope.signing_input.starts_with(b"eyJ"));
        let rsa = NotaryEnvelope::parse(JWS_ENVELOPE, &fixture("generate-test.jws")).unwrap();
        assert_eq!((rsa.algorithm, rsa.headers.expiry, rsa.certificate_chain.len()), (Algorithm::Ps256, None, 1));
    }

    #[test]
    fn reads_notations_cose_and_rebuilds_its_sig_structure() {
        let envelope = NotaryEnvelope::parse(COSE_ENVELOPE, &fixture("generate-test-expiry.cose")).unwrap();
        assert_eq!(envelope.format, EnvelopeFormat::Cose);
        assert_eq!(envelope.algorithm, Algorithm::Ps256);
        assert_eq!(envelope.headers.content_type, NOTARY_PAYLOAD);
        assert_eq!(envelope.headers.critical, [SIGNING_SCHEME, EXPIRY]);
        assert!(envelope.headers.protected_names.contains(&"1".to_owned()));
        assert_eq!(
            envelope.headers.expiry.unwrap() - envelope.headers.signing_time.unwrap(),
            time::Duration::hours(24)
        );
        assert_eq!(envelope.target_artifact.digest, image().digest);
        assert!(envelope.signing_input.starts_with(&[0x84, 0x6a]), "Sig_structure: a 4-array, then \"Signature1\"");
        let chain = NotaryEnvelope::parse(COSE_ENVELOPE, &fixture("chain-cose.cose")).unwrap();
        assert_eq!((chain.algorithm, chain.certificate_chain.len()), (Algorithm::Es256, 3));
    }

    #[test]
    fn refuses_what_is_not_an_envelope_or_out_of_bounds() {
        let jws = fixture("chain.jws");
        assert!(NotaryEnvelope::parse("application/json", &jws).is_err());
        assert!(NotaryEnvelope::parse(COSE_ENVELOPE, &jws).is_err());
        assert!(NotaryEnvelope::parse(JWS_ENVELOPE, &vec![b' '; MAX_ENVELOPE_BYTES + 1]).is_err());
        let mut doc: Value = serde_json::from_slice(&jws).unwrap();
        let cert = doc["header"]["x5c"][0].clone();
        doc["header"]["x5c"] = Value::Array(vec![cert; MAX_CHAIN + 1]);
        let err = NotaryEnvelope::parse(JWS_ENVELOPE, doc.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("more than the 10"), "{err}");
        doc["header"]["x5c"] = json!([]);
        assert!(NotaryEnvelope::parse(JWS_ENVELOPE, doc.to_string().as_bytes()).is_err());
        // an algorithm outside the Notary Project's list
        let mut doc: Value = serde_json::from_slice(&jws).unwrap();
        let header = json!({"alg": "HS256", "crit": [SIGNING_SCHEME], SIGNING_SCHEME: "notary.x509"});
        doc["protected"] = URL_SAFE_NO_PAD.encode(header.to_string()).into();
        let err = NotaryEnvelope::parse(JWS_ENVELOPE, doc.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("unsupported JWS alg"), "{err}");
        // an untagged COSE_Sign1
        let cose = fixture("chain-cose.cose");
        let Cbor::Tag(_, inner) = ciborium::from_reader::<Cbor, _>(cose.as_slice()).unwrap() else { panic!() };
        let mut untagged = Vec::new();
        ciborium::into_writer(&*inner, &mut untagged).unwrap();
        assert!(NotaryEnvelope::parse(COSE_ENVELOPE, &untagged).is_err());
    }

    #[test]
    fn builds_a_jws_that_reads_back_with_notations_header_set() {
        let target = image();
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let claims = JwsClaims {
            target: &target,
            algorithm: Algorithm::Es256,
            signing_time: at,
            expiry: Some(at + time::Duration::days(7)),
        };
        let to_sign = JwsToSign::new(&claims).unwrap();
        let input = to_sign.signing_input();
        let chain = vec![b"leaf".to_vec(), b"root".to_vec()];
        let bytes = to_sign.finish(&[7; 64], &chain, "notarium/0.1.0", Some(b"token"));
        let envelope = NotaryEnvelope::parse(JWS_ENVELOPE, &bytes).unwrap();
        assert_eq!(envelope.signing_input, input);
        assert_eq!(envelope.signature, [7; 64]);
        assert_eq!(envelope.headers.critical, [SIGNING_SCHEME, EXPIRY]);
        assert_eq!(envelope.headers.signing_time, Some(at));
        assert_eq!(envelope.headers.content_type, NOTARY_PAYLOAD);
        assert_eq!(envelope.certificate_chain, chain);
        assert_eq!(envelope.signing_agent.as_deref(), Some("notarium/0.1.0"));
        assert_eq!(envelope.timestamp_signature.as_deref(), Some(&b"token"[..]));
        assert_eq!(envelope.target_artifact.digest, target.digest);
        // Without an expiry, crit lists the signing scheme alone (as notation writes it).
        let bare = JwsToSign::new(&JwsClaims { expiry: None, ..claims }).unwrap().finish(&[1; 64], &chain, "n", None);
        let bare = NotaryEnvelope::parse(JWS_ENVELOPE, &bare).unwrap();
        assert_eq!((bare.headers.critical.as_slice(), bare.headers.expiry), (&[SIGNING_SCHEME.to_owned()][..], None));
    }

    #[test]
    fn der_ecdsa_signatures_become_fixed_size() {
        use p256::ecdsa::signature::Signer as _;
        let key = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
        let sig: p256::ecdsa::Signature = key.sign(b"m");
        let fixed = ecdsa_der_to_fixed(Algorithm::Es256, sig.to_der().as_bytes()).unwrap();
        assert_eq!(fixed, sig.to_bytes().to_vec());
        assert!(ecdsa_der_to_fixed(Algorithm::Ps256, sig.to_der().as_bytes()).is_err());
        assert!(ecdsa_der_to_fixed(Algorithm::Es256, b"junk").is_err());
    }

    #[test]
    fn the_referrer_manifest_matches_notations_but_for_the_oci_1_1_artifact_type() {
        let envelope = fixture("chain.jws");
        let theirs = SignatureManifest::parse(&fixture("chain.manifest.json")).unwrap();
        assert!(theirs.is_notary_signature(), "notation on a registry without the referrers API: config media type");
        let parsed = NotaryEnvelope::parse(JWS_ENVELOPE, &envelope).unwrap();
        let created = theirs.annotations.get(crate::formats::referrer::CREATED_ANNOTATION).map(String::as_str);
        let ours = SignatureManifest::for_notary_signature(
            theirs.subject.clone().unwrap(),
            EnvelopeFormat::Jws,
            &envelope,
            &parsed.certificate_chain,
            created,
        );
        assert_eq!(ours.annotations, theirs.annotations);
        assert_eq!(ours.layers, theirs.layers);
        assert_eq!(ours.subject, theirs.subject);
        assert_eq!(ours.artifact_type.as_deref(), Some(NOTARY_SIGNATURE));
        assert_eq!(ours.config.media_type, OCI_EMPTY);
        assert_eq!(ours.config.digest, theirs.config.digest, "both configs are the empty JSON blob");
        assert!(ours.is_notary_signature());
        let (format, layer) = ours.notary_envelope_layer().unwrap();
        assert_eq!((format, layer.digest.as_str()), (EnvelopeFormat::Jws, Digest::of(&envelope).to_string().as_str()));
        let cose = SignatureManifest::parse(&fixture("chain-cose.manifest.json")).unwrap();
        assert_eq!(cose.notary_envelope_layer().unwrap().0, EnvelopeFormat::Cose);
    }
}

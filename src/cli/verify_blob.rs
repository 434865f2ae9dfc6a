//! `notarium verify-blob` (alias `verify-bundle`, the Sigstore conformance protocol's name): a Sigstore
//! bundle over a file or a `sha256:<hex>` digest, verified offline against a trusted root (the public-good
//! production root by default), for a certificate identity and OIDC issuer or for a public key.
//!
//! Owns: reading the arguments and files, the identity match and the in-toto subject match, exit codes.
//! Must not touch: the cryptographic checks (`pki::verify_bundle`).

use std::path::{Path, PathBuf};

use serde_json::json;
use time::OffsetDateTime;

use super::{CliError, Output};
use crate::formats::Digest;
use crate::formats::bundle::Bundle;
use crate::formats::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::formats::in_toto::Statement;
use crate::keys::PublicKey;
use crate::pki::{Artifact, Expected, TrustedRoot, VerifiedBundle, verify_bundle};

/// Larger bundles and trusted roots are refused unread: real ones are tens of kilobytes.
const MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Who must have signed.
pub(super) enum Signer {
    Identity { subject: String, issuer: String },
    Key(PathBuf),
}

pub(super) struct Request {
    pub bundle: PathBuf,
    pub signer: Signer,
    pub trusted_root: Option<PathBuf>,
    pub artifact: String,
}

fn read_bounded(path: &Path, what: &str) -> Result<Vec<u8>, CliError> {
    let size = std::fs::metadata(path).map_err(|e| CliError::Usage(format!("{what} {}: {e}", path.display())))?.len();
    if size > MAX_DOCUMENT_BYTES {
        return Err(CliError::Refused(format!("{what} {} is larger than {MAX_DOCUMENT_BYTES} bytes", path.display())));
    }
    std::fs::read(path).map_err(|e| CliError::Usage(format!("{what} {}: {e}", path.display())))
}

/// The artifact: `sha256:<64 hex>` is a digest, anything else a path.
enum ArtifactInput {
    Bytes(Vec<u8>),
    Digest(Digest),
}

impl ArtifactInput {
    fn read(argument: &str) -> Result<Self, CliError> {
        if argument.starts_with("sha256:") {
            return Digest::parse(argument).map(Self::Digest).map_err(|e| CliError::Usage(e.to_string()));
        }
        std::fs::read(argument).map(Self::Bytes).map_err(|e| CliError::Usage(format!("artifact {argument}: {e}")))
    }

    fn as_artifact(&self) -> Artifact<'_> {
        match self {
            Self::Bytes(bytes) => Artifact::Bytes(bytes),
            Self::Digest(digest) => Artifact::Digest(digest),
        }
    }

    fn digest(&self) -> Digest {
        match self {
            Self::Bytes(bytes) => Digest::of(bytes),
            Self::Digest(digest) => digest.clone(),
        }
    }
}

pub(super) fn verify_blob(request: &Request, output: Output) -> Result<(), CliError> {
    let root = match &request.trusted_root {
        Some(path) => TrustedRoot::parse(&read_bounded(path, "trusted root")?)
            .map_err(|e| CliError::Refused(format!("trusted root {}: {e}", path.display())))?,
        None => TrustedRoot::production(),
    };
    let bundle =
        Bundle::parse(&read_bounded(&request.bundle, "bundle")?).map_err(|e| CliError::Refused(e.to_string()))?;
    let artifact = ArtifactInput::read(&request.artifact)?;
    let key = match &request.signer {
        Signer::Key(path) => {
            let pem = String::from_utf8(read_bounded(path, "key")?)
                .map_err(|_| CliError::Usage(format!("key {}: not a PEM file", path.display())))?;
            // A key that cannot be read cannot have signed: a refusal, as the conformance protocol expects.
            Some(PublicKey::from_pem(&pem).map_err(|e| CliError::Refused(format!("key {}: {e}", path.display())))?)
        }
        Signer::Identity { .. } => None,
    };
    let expected = key.as_ref().map_or(Expected::AnyCertificate, Expected::Key);
    let verified = verify_bundle(&bundle, &root, expected, artifact.as_artifact(), OffsetDateTime::now_utc())
        .map_err(|e| CliError::Refused(e.to_string()))?;
    check_evidence(&verified)?;
    check_identity(&verified, &request.signer)?;
    check_subject(&verified, &artifact.digest())?;
    report(&verified, output);
    Ok(())
}

/// A signature is only as good as the proof of when it was made: at least one log entry or timestamp.
fn check_evidence(verified: &VerifiedBundle) -> Result<(), CliError> {
    if verified.entries.is_empty() && verified.timestamps.is_empty() {
        return Err(CliError::Refused("the bundle has neither a transparency-log entry nor a timestamp".into()));
    }
    Ok(())
}

fn check_identity(verified: &VerifiedBundle, signer: &Signer) -> Result<(), CliError> {
    let Signer::Identity { subject, issuer } = signer else { return Ok(()) };
    let Some(identity) = &verified.certificate else {
        return Err(CliError::Refused("the bundle is not signed by a certificate".into()));
    };
    if &identity.issuer != issuer {
        return Err(CliError::Refused(format!(
            "the certificate's OIDC issuer is {:?}, not {issuer:?}",
            identity.issuer
        )));
    }
    if &identity.subject != subject {
        return Err(CliError::Refused(format!("the certificate names {:?}, not {subject:?}", identity.subject)));
    }
    Ok(())
}

/// For a DSSE bundle, the artifact must be a subject of the in-toto Statement it carries.
fn check_subject(verified: &VerifiedBundle, artifact: &Digest) -> Result<(), CliError> {
    let Some((payload_type, payload)) = &verified.dsse_payload else { return Ok(()) };
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(CliError::Refused(format!("the DSSE payload type {payload_type:?} is not an in-toto Statement")));
    }
    let statement = Statement::parse(payload).map_err(|e| CliError::Refused(e.to_string()))?;
    if statement.subject.iter().any(|subject| subject.sha256_hex() == Some(artifact.hex())) {
        Ok(())
    } else {
        Err(CliError::Refused(format!("the artifact {artifact} is not a subject of the in-toto Statement")))
    }
}

fn report(verified: &VerifiedBundle, output: Output) {
    let identity = verified.certificate.as_ref();
    let log_indexes: Vec<u64> = verified.entries.iter().map(|entry| entry.log_index).collect();
    let json = json!({
        "verified": true,
        "subject": identity.map(|i| &i.subject),
        "issuer": identity.map(|i| &i.issuer),
        "log_indexes": log_indexes,
        "timestamps": verified.timestamps.len(),
    });
    output.print(&json, || match identity {
        Some(identity) => format!("Verified OK: {} ({})", identity.subject, identity.issuer),
        None => "Verified OK".to_owned(),
    });
}

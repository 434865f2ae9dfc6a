//! `notarium verify-blob` (alias `verify-bundle`, the Sigstore conformance protocol's name): a Sigstore
//! bundle over a file or a `sha256:<hex>` digest, verified offline against a trusted root (the public-good
//! production root by default), for a certificate identity and OIDC issuer or for a public key.
//!
//! Owns: reading the arguments and files, the identity match and the in-toto subject match, exit codes.
//! Must not touch: the cryptographic checks (`pki::verify_bundle`).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::{CliError, Output};
use crate::formats::Digest;
use crate::formats::bundle::Bundle;
use crate::formats::digest::hex_lower;
use crate::formats::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::formats::in_toto::Statement;
use crate::keys::PublicKey;
use crate::local_file::{LocalFileError, MIB, read_capped};
use crate::pki::trusted_root::MAX_DOCUMENT_BYTES as MAX_TRUSTED_ROOT_BYTES;
use crate::pki::{Artifact, Expected, TrustedRoot, VerifiedBundle, verify_bundle};

/// Larger bundles and keys are refused unread: real ones are tens of kilobytes.
const MAX_DOCUMENT_BYTES: u64 = 16 * MIB;
/// An artifact file up to this size is held in memory (a message signature by an Ed25519 key is checked over the
/// bytes themselves); a larger one is hashed as it streams and judged by its SHA-256 digest, as `sha256:<hex>`.
const MAX_ARTIFACT_IN_MEMORY_BYTES: u64 = 64 * MIB;

/// The SHA-256 digest of the file at `path`, read in chunks: a file of any size costs a buffer in memory.
fn streamed_digest(path: &Path) -> Result<Digest, CliError> {
    let unreadable = |e: std::io::Error| CliError::Usage(format!("artifact {}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let (mut hasher, mut chunk) = (Sha256::new(), vec![0; 1 << 16]);
    loop {
        match file.read(&mut chunk).map_err(unreadable)? {
            0 => break,
            n => hasher.update(&chunk[..n]),
        }
    }
    Digest::parse(&format!("sha256:{}", hex_lower(&hasher.finalize()))).map_err(|e| CliError::Usage(e.to_string()))
}

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

/// `path` within `limit` bytes; `what` names the argument. A file past the limit is refused, an unreadable one
/// is a usage error.
fn read_bounded(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, CliError> {
    read_capped(path, limit).map_err(|e| match e {
        LocalFileError::TooLarge { .. } => CliError::Refused(format!("{what}: {e}")),
        _ => CliError::Usage(format!("{what}: {e}")),
    })
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
        let path = Path::new(argument);
        match read_capped(path, MAX_ARTIFACT_IN_MEMORY_BYTES) {
            Ok(bytes) => Ok(Self::Bytes(bytes)),
            Err(LocalFileError::TooLarge { .. }) => streamed_digest(path).map(Self::Digest),
            Err(e) => Err(CliError::Usage(format!("artifact: {e}"))),
        }
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
        Some(path) => TrustedRoot::parse(&read_bounded(path, "trusted root", MAX_TRUSTED_ROOT_BYTES as u64)?)
            .map_err(|e| CliError::Refused(format!("trusted root {}: {e}", path.display())))?,
        None => TrustedRoot::production(),
    };
    let bundle = Bundle::parse(&read_bounded(&request.bundle, "bundle", MAX_DOCUMENT_BYTES)?)
        .map_err(|e| CliError::Refused(e.to_string()))?;
    let artifact = ArtifactInput::read(&request.artifact)?;
    let key = match &request.signer {
        Signer::Key(path) => {
            let pem = String::from_utf8(read_bounded(path, "key", MAX_DOCUMENT_BYTES)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_bundle_trusted_root_or_key_is_refused_unread_naming_it() {
        let limits = [
            ("bundle", MAX_DOCUMENT_BYTES),
            ("key", MAX_DOCUMENT_BYTES),
            ("trusted root", MAX_TRUSTED_ROOT_BYTES as u64),
        ];
        for (what, limit) in limits {
            let (_dir, path) = crate::local_file::sparse_file("big.json", limit + 1);
            let Err(CliError::Refused(message)) = read_bounded(&path, what, limit) else { panic!("{what} was read") };
            assert!(message.contains(&path.display().to_string()) && message.contains("larger than the limit"));
        }
        let (dir, big) = crate::local_file::sparse_file("big.json", MAX_DOCUMENT_BYTES + 1);
        let request = |bundle: &Path, trusted_root: Option<&Path>, signer: Signer| Request {
            bundle: bundle.to_owned(),
            signer,
            trusted_root: trusted_root.map(Path::to_owned),
            artifact: format!("sha256:{}", "0".repeat(64)),
        };
        let small = dir.path().join("small.json");
        std::fs::write(&small, "{}").unwrap();
        let root = dir.path().join("root.json");
        std::fs::File::create(&root).unwrap().set_len(MAX_TRUSTED_ROOT_BYTES as u64 + 1).unwrap();
        let identity = || Signer::Identity { subject: "s".into(), issuer: "i".into() };
        for (request, named) in
            [(request(&big, None, identity()), &big), (request(&small, Some(&root), identity()), &root)]
        {
            let Err(CliError::Refused(message)) = verify_blob(&request, Output::Text) else { panic!("read it") };
            assert!(message.contains(&named.display().to_string()), "{message}");
            assert!(message.contains("larger than the limit"), "{message}");
        }
    }

    #[test]
    fn an_artifact_past_the_in_memory_limit_is_hashed_as_it_streams() {
        let (_dir, path) = crate::local_file::sparse_file("artifact", MAX_ARTIFACT_IN_MEMORY_BYTES + 1);
        let ArtifactInput::Digest(digest) = ArtifactInput::read(path.to_str().unwrap()).unwrap() else {
            panic!("a large artifact was held in memory")
        };
        let mut zeros = Sha256::new();
        for _ in 0..MAX_ARTIFACT_IN_MEMORY_BYTES / MIB {
            zeros.update(vec![0u8; MIB as usize]);
        }
        zeros.update([0u8]);
        assert_eq!(digest.hex(), hex_lower(&zeros.finalize()));
        let (_dir, path) = crate::local_file::sparse_file("artifact", 16);
        assert!(
            matches!(ArtifactInput::read(path.to_str().unwrap()).unwrap(), ArtifactInput::Bytes(b) if b == [0; 16])
        );
    }
}

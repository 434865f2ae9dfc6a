//! Finding the key's versions on the token: every private key with the configured label (or id), numbered
//! by CKA_ID, with its public key read from the matching public key object.

use std::sync::Arc;

use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::TokenError;
use super::login::Pkcs11Settings;
use crate::keys::PublicKey;

const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// One version of the key: its private key handle on the token and its public key.
pub(super) struct TokenKey {
    pub(super) version: u32,
    pub(super) private: ObjectHandle,
    pub(super) public_key: PublicKey,
}

pub(super) fn find_keys(session: &Session, settings: &Pkcs11Settings) -> Result<Vec<Arc<TokenKey>>, TokenError> {
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(label) = &settings.key_label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &settings.key_id {
        template.push(Attribute::Id(id.clone()));
    }
    let handles = session.find_objects(&template)?;
    let mut keys = Vec::new();
    for private in handles {
        let id = match session.get_attributes(private, &[AttributeType::Id])?.pop() {
            Some(Attribute::Id(id)) => id,
            _ => Vec::new(),
        };
        let public_key = public_key_for(session, &id, settings)?;
        keys.push(Arc::new(TokenKey { version: version_of(&id), private, public_key }));
    }
    if keys.is_empty() {
        return Err(TokenError::Other(format!(
            "no private key with label {:?} / id {:?} on token {:?}",
            settings.key_label.as_deref().unwrap_or("*"),
            settings.key_id.as_ref().map(|id| id.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            settings.token_label
        )));
    }
    keys.sort_by_key(|k| k.version);
    keys.dedup_by_key(|k| k.version);
    Ok(keys)
}

/// CKA_ID as a big-endian integer: `--id 01` is version 1, `--id 02` version 2.
fn version_of(id: &[u8]) -> u32 {
    if id.is_empty() || id.len() > 4 {
        return 1;
    }
    id.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b)).max(1)
}

fn public_key_for(session: &Session, id: &[u8], settings: &Pkcs11Settings) -> Result<PublicKey, TokenError> {
    let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id.to_vec())];
    if let Some(label) = &settings.key_label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    let handle = session
        .find_objects(&template)?
        .into_iter()
        .next()
        .ok_or_else(|| "the private key has no public key object with the same id and label".to_owned())?;
    let attributes =
        session.get_attributes(handle, &[AttributeType::KeyType, AttributeType::EcParams, AttributeType::EcPoint])?;
    let mut key_type = None;
    let (mut params, mut point) = (Vec::new(), Vec::new());
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::EcParams(p) => params = p,
            Attribute::EcPoint(p) => point = p,
            _ => {}
        }
    }
    let key = match key_type {
        Some(KeyType::EC) if params == P256_OID => {
            let sec1 = unwrap_octet_string(&point, 65);
            p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
                .map(|k| PublicKey::from_p256(&k))
                .map_err(|e| format!("token's P-256 public point is invalid: {e}"))
        }
        Some(KeyType::EC_EDWARDS) => {
            let raw: [u8; 32] = unwrap_octet_string(&point, 32)
                .try_into()
                .map_err(|_| "token's Ed25519 public point is not 32 bytes".to_owned())?;
            ed25519_dalek::VerifyingKey::from_bytes(&raw)
                .map(|k| PublicKey::from_ed25519(&k))
                .map_err(|e| format!("token's Ed25519 public key is invalid: {e}"))
        }
        other => Err(format!("unsupported key type {other:?}: notarium signs with P-256 or Ed25519")),
    };
    Ok(key?)
}

/// CKA_EC_POINT is a DER OCTET STRING on most tokens and the raw point on some: accept both.
fn unwrap_octet_string(point: &[u8], raw_len: usize) -> &[u8] {
    if point.len() == raw_len + 2 && point[0] == 0x04 && usize::from(point[1]) == raw_len { &point[2..] } else { point }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_number_versions() {
        assert_eq!(version_of(&[]), 1);
        assert_eq!(version_of(&[0x01]), 1);
        assert_eq!(version_of(&[0x00, 0x02]), 2);
        assert_eq!(version_of(&[0x01, 0x00]), 256);
        assert_eq!(version_of(&[1, 2, 3, 4, 5]), 1);
    }

    #[test]
    fn ec_points_are_accepted_wrapped_or_raw() {
        let raw = [0x04u8; 65];
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend_from_slice(&raw);
        assert_eq!(unwrap_octet_string(&wrapped, 65), &raw[..]);
        assert_eq!(unwrap_octet_string(&raw, 65), &raw[..]);
    }
}

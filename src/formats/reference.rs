//! Image references `host[:port]/repository[:tag][@sha256:<hex>]`, with the registry host required:
//! notarium never guesses Docker Hub.

use std::fmt;

use super::{Digest, FormatError};

/// A parsed image reference. At least one of `tag` and `digest` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// `host[:port]` of the registry.
    pub registry: String,
    /// Repository path inside the registry, e.g. `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl ImageReference {
    /// Parses a reference; a missing tag and digest means the tag `latest`.
    pub fn parse(input: &str) -> Result<Self, FormatError> {
        let malformed =
            |reason: &str| FormatError::MalformedReference { reference: input.to_owned(), reason: reason.to_owned() };
        if input.is_empty() || input.len() > 4096 {
            return Err(malformed("empty or longer than 4096 characters"));
        }
        let (name_and_tag, digest) = match input.rsplit_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (input, None),
        };
        let (name, tag) = split_tag(name_and_tag);
        let (registry, repository) = name
            .split_once('/')
            .filter(|(host, _)| looks_like_host(host))
            .ok_or_else(|| FormatError::MissingRegistryHost(input.to_owned()))?;
        if !valid_host(registry) {
            return Err(malformed("the registry host is not a valid host[:port]"));
        }
        if !repository.split('/').all(valid_path_component) {
            return Err(malformed("repository path components must be lowercase letters, digits and . _ - separators"));
        }
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(malformed("the tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
            }
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };
        Ok(Self { registry: registry.to_owned(), repository: repository.to_owned(), tag, digest })
    }

    /// `host/repository`, the identity cosign writes.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same image pinned to `digest`, keeping the tag for display and identity.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self { digest: Some(digest), ..self.clone() }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn split_tag(name_and_tag: &str) -> (&str, Option<&str>) {
    match name_and_tag.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (name_and_tag, None),
    }
}

fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    port_ok && name_ok
}

fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    alnum(first)
        && alnum(last)
        && bytes.iter().all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        && !component.contains("..")
}

fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c4ea3eb55a9e77e1edfcec7acc64cab6650ef710811264fdd18cedeba6de5c83";

    #[test]
    fn parses_host_port_repository_tag_and_digest() {
        let r = ImageReference::parse(&format!("127.0.0.1:5000/team/app:v1@sha256:{HEX}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.digest.unwrap().hex(), HEX);
    }

    #[test]
    fn a_bare_name_defaults_to_latest_and_a_digest_has_no_tag() {
        assert_eq!(ImageReference::parse("reg.example/app").unwrap().tag.as_deref(), Some("latest"));
        let pinned = ImageReference::parse(&format!("reg.example/app@sha256:{HEX}")).unwrap();
        assert_eq!(pinned.tag, None);
        assert_eq!(pinned.to_string(), format!("reg.example/app@sha256:{HEX}"));
    }

    #[test]
    fn refuses_references_without_a_registry_host() {
        for input in ["app:v1", "library/app", &format!("team/app@sha256:{HEX}")] {
            assert!(matches!(ImageReference::parse(input), Err(FormatError::MissingRegistryHost(_))), "{input}");
        }
    }

    #[test]
    fn refuses_malformed_digests_tags_and_paths() {
        assert!(matches!(ImageReference::parse("reg.example/app@sha256:1234"), Err(FormatError::MalformedDigest(_))));
        for input in ["reg.example/App:v1", "reg.example/app:-v1", "reg.example//app", "reg.example/app:"] {
            assert!(ImageReference::parse(input).is_err(), "{input}");
        }
    }
}

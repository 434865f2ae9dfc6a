//! Image references `host[:port]/repository[:tag][@sha256:<hex>]`, with the registry host required:
//! notarium never guesses Docker Hub.
//!
//! Owns: the one canonical spelling of a reference, produced by [`ImageReference::parse`] itself, so that
//! policies, signer scopes, registry credentials, the plain-HTTP list, the decision cache, the register and
//! answers never see two names for one repository. Must not touch: the network (which host a canonical
//! name is reached at is [`connection_host`], a pure mapping).
//!
//! The canonical host is lowercase; `:443`, the HTTPS default, is dropped. Every other port is kept,
//! `:80` included: notarium speaks HTTPS unless a registry is on the plain-HTTP list, so `host:80` is
//! another endpoint than `host` (and a plain-HTTP registry named without a port is reached at port 80,
//! the `http://` default). Docker Hub's aliases `index.docker.io` and `registry-1.docker.io` are
//! `docker.io`, whose single-segment repositories get the `library/` prefix. Spellings that could name
//! the same host in ways this cannot see are refused as malformed: a trailing dot, a port with a leading
//! zero or out of range, an empty port, and numeric hosts that are not a plain dotted quad (`127.1`,
//! `0x7f.0.0.1`, `2130706433`, which URL parsers read as IPv4 addresses).

use std::fmt;

use super::{Digest, FormatError};

/// A parsed image reference, in canonical form. At least one of `tag` and `digest` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// `host[:port]` of the registry, canonical (see [`canonical_registry`]).
    pub registry: String,
    /// Repository path inside the registry, e.g. `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl ImageReference {
    /// Parses a reference into its canonical form; a missing tag and digest means the tag `latest`.
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
        let (host, repository) = name
            .split_once('/')
            .filter(|(host, _)| looks_like_host(host))
            .ok_or_else(|| FormatError::MissingRegistryHost(input.to_owned()))?;
        let registry =
            canonical_host(host).map_err(|reason| malformed(&format!("the registry host {host:?}: {reason}")))?;
        if !repository.split('/').all(valid_path_component) {
            return Err(malformed(
                "repository path components are lowercase letters and digits joined by '.', '_', '__' or dashes",
            ));
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
        let repository = docker_hub_library(&registry, repository);
        // Both as written (what distribution's grammar and docker count) and canonical (what registries see).
        if name.len() > MAX_NAME || registry.len() + 1 + repository.len() > MAX_NAME {
            return Err(malformed("host/repository is longer than 255 characters, the limit registries enforce"));
        }
        Ok(Self { registry, repository, tag, digest })
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

/// The canonical form of a registry `host[:port]`: lowercase, without `:443`, `docker.io` for Docker Hub's
/// aliases. Refuses what is not a host, or could be another spelling of one (see the module comment).
pub fn canonical_registry(host: &str) -> Result<String, FormatError> {
    canonical_host(host)
        .map_err(|reason| FormatError::MalformedRegistryHost { host: host.to_owned(), reason: reason.to_owned() })
}

/// A repository glob (`host/path/*`, as policies and signer scopes write them) in the canonical form of the
/// names it is matched against: the host canonical, and `library/` before a single-segment Docker Hub path.
/// A host holding a glob is only lowercased; a pattern whose host is not valid is returned unchanged (no
/// canonical name can match it).
pub fn canonical_pattern(pattern: &str) -> String {
    let Some((host, path)) = pattern.split_once('/').filter(|(host, _)| looks_like_host(host)) else {
        return pattern.to_owned();
    };
    if host.contains('*') {
        return format!("{}/{path}", host.to_ascii_lowercase());
    }
    let Ok(host) = canonical_host(host) else {
        return pattern.to_owned();
    };
    // `docker.io/**` already spans `library/`; a single segment (`nginx`, `*`) names an official image.
    let path = if path.contains("**") { path.to_owned() } else { docker_hub_library(&host, path) };
    format!("{host}/{path}")
}

/// The host a canonical registry name is reached at: Docker Hub's registry API answers at
/// `registry-1.docker.io`, every other registry at its own name.
pub fn connection_host(registry: &str) -> &str {
    if registry == DOCKER_HUB { DOCKER_HUB_ENDPOINT } else { registry }
}

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];
const HTTPS_PORT: &str = "443";
const MAX_HOST_NAME: usize = 253;
/// `host/repository` at most, as distribution's reference grammar (and most registries) allow.
const MAX_NAME: usize = 255;

fn canonical_host(host: &str) -> Result<String, &'static str> {
    let lower = host.to_ascii_lowercase();
    let (name, port) = match lower.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (lower.as_str(), None),
    };
    check_host_name(name)?;
    // A dotless host other than `localhost` keeps even `:443`: without a port, `a/b` reads as a Docker Hub path.
    match port {
        Some(port) if port != HTTPS_PORT || !looks_like_host(name) => {
            check_port(port)?;
            Ok(format!("{name}:{port}"))
        }
        _ if DOCKER_HUB_ALIASES.contains(&name) => Ok(DOCKER_HUB.to_owned()),
        _ => Ok(name.to_owned()),
    }
}

fn check_host_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_HOST_NAME {
        return Err("the host name is empty or longer than 253 characters");
    }
    if name.ends_with('.') {
        return Err("a trailing dot is not accepted: write the host without it");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if !labels.iter().all(|label| valid_label(label)) {
        return Err("host name labels are letters, digits and inner hyphens, 1 to 63 long, separated by single dots");
    }
    let last = labels.last().expect("split yields at least one label");
    if is_numeric_label(last) && !is_dotted_quad(&labels) {
        return Err("a numeric host must be a dotted quad like 127.0.0.1, without leading zeros or short or hex forms");
    }
    Ok(())
}

fn valid_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A last label URL parsers read as a number, which makes them read the whole host as an IPv4 address.
fn is_numeric_label(label: &str) -> bool {
    let hex = label.strip_prefix("0x").filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex.is_some() || label.bytes().all(|b| b.is_ascii_digit())
}

fn is_dotted_quad(labels: &[&str]) -> bool {
    labels.len() == 4 && labels.iter().all(|l| is_canonical_decimal(l) && l.parse::<u8>().is_ok())
}

fn check_port(port: &str) -> Result<(), &'static str> {
    if is_canonical_decimal(port) && port.parse::<u16>().is_ok_and(|p| p > 0) {
        Ok(())
    } else {
        Err("the port must be a decimal number from 1 to 65535 without leading zeros")
    }
}

/// Digits only, and no leading zero unless the number is 0.
fn is_canonical_decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'))
}

/// `library/NAME` for a single-segment Docker Hub repository, as Docker itself names official images.
fn docker_hub_library(registry: &str, repository: &str) -> String {
    if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_owned()
    }
}

fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first.eq_ignore_ascii_case("localhost")
}

/// Lowercase letters and digits in runs joined by single separators, `.`, `_`, `__` or any number of `-`:
/// distribution's path-component grammar (`[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`).
fn valid_path_component(component: &str) -> bool {
    let separators: Vec<&str> = component.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()).collect();
    let (Some(first), Some(last)) = (separators.first(), separators.last()) else {
        return false;
    };
    !component.is_empty() && first.is_empty() && last.is_empty() && separators.iter().all(|s| valid_separator(s))
}

/// Between two letters or digits: nothing, or one separator of the grammar.
fn valid_separator(between: &str) -> bool {
    matches!(between, "." | "_" | "__") || between.bytes().all(|b| b == b'-')
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
    fn a_name_longer_than_registries_accept_is_malformed() {
        let components = |n: usize, part: &str| vec![part; n].join("/");
        assert!(ImageReference::parse(&format!("reg.example/{}:v1", components(60, "ab"))).is_ok());
        let long = format!("reg.example/{}:v1", components(60, "abcd"));
        let error = ImageReference::parse(&long).unwrap_err().to_string();
        assert!(error.contains("longer than 255 characters"), "{error}");
        let exactly = format!("reg.example/{}", "a".repeat(255 - "reg.example/".len()));
        assert!(ImageReference::parse(&exactly).is_ok());
        assert!(ImageReference::parse(&format!("{exactly}b")).is_err());
    }

    /// Found by tests/differential.rs against distribution's grammar: a name over 255 characters as written
    /// was accepted when its canonical form was shorter (`:443` dropped, `index.docker.io` read as `docker.io`).
    #[test]
    fn a_name_over_the_limit_as_written_is_malformed_even_if_its_canonical_form_is_shorter() {
        for host in ["reg.example:443", "index.docker.io", "REG.EXAMPLE:443"] {
            let path = format!("team/{}", "a".repeat(255 - host.len() - "/team/".len()));
            assert!(ImageReference::parse(&format!("{host}/{path}")).is_ok(), "{host}");
            let error = ImageReference::parse(&format!("{host}/{path}b")).unwrap_err().to_string();
            assert!(error.contains("longer than 255 characters"), "{host}: {error}");
        }
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

    /// Found by tests/differential.rs against distribution's grammar: mixed or tripled separators
    /// (`0b100z-z9._b0bz`) were accepted, names registries and docker refuse.
    #[test]
    fn path_components_take_the_separators_of_distributions_grammar_only() {
        for good in ["a.b", "a_b", "a__b", "a-b", "a---b", "a.b_c__d-e", "0", "a1.2b"] {
            assert!(ImageReference::parse(&format!("reg.example/{good}")).is_ok(), "{good}");
        }
        for bad in
            ["0b100z-z9._b0bz", "a._b", "a_.b", "a-_b", "a_-b", "a.-b", "a-.b", "a___b", "a..b", "a.", "_a", "a-"]
        {
            assert!(
                matches!(
                    ImageReference::parse(&format!("reg.example/{bad}")),
                    Err(FormatError::MalformedReference { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_spelling_of_a_host_parses_to_one_canonical_reference() {
        let table = [
            ("localhost:5000/team-b/app", "localhost:5000/team-b/app"),
            ("LocalHost:5000/team-b/app", "localhost:5000/team-b/app"),
            ("LOCALHOST/app", "localhost/app"),
            ("Registry.Example/app", "registry.example/app"),
            ("registry.example:443/app", "registry.example/app"),
            ("REGISTRY.example:443/team/app", "registry.example/team/app"),
            ("registry.example:80/app", "registry.example:80/app"),
            ("registry.example:8443/app", "registry.example:8443/app"),
            ("127.0.0.1:5000/app", "127.0.0.1:5000/app"),
            ("docker.io/nginx", "docker.io/library/nginx"),
            ("docker.io:443/nginx", "docker.io/library/nginx"),
            ("index.docker.io/nginx", "docker.io/library/nginx"),
            ("Index.Docker.IO:443/nginx", "docker.io/library/nginx"),
            ("registry-1.docker.io/nginx", "docker.io/library/nginx"),
            ("registry-1.docker.io/library/nginx", "docker.io/library/nginx"),
            ("index.docker.io/bitnami/redis", "docker.io/bitnami/redis"),
            ("registry-1.docker.io:5000/nginx", "registry-1.docker.io:5000/nginx"),
            ("xn--bcher-kva.example/app", "xn--bcher-kva.example/app"),
            ("Mirror:443/app", "mirror:443/app"),
        ];
        for (input, canonical) in table {
            let parsed = ImageReference::parse(&format!("{input}@sha256:{HEX}")).unwrap();
            assert_eq!(parsed.repository_name(), canonical, "{input}");
            assert_eq!(ImageReference::parse(&parsed.to_string()).unwrap(), parsed, "{input} is not a fixed point");
        }
    }

    #[test]
    fn ambiguous_host_spellings_are_refused_as_malformed() {
        let refused = [
            "localhost.:5000/app",
            "registry.example./app",
            "registry.example:0443/app",
            "registry.example:00443/app",
            "localhost:05000/app",
            "localhost:/app",
            "localhost:0/app",
            "localhost:65536/app",
            "localhost:5000:1/app",
            "127.1:5000/app",
            "127.000.000.001:5000/app",
            "0x7f.0.0.1:5000/app",
            "0x7f000001:5000/app",
            "2130706433:5000/app",
            "256.0.0.1:5000/app",
            "-registry.example/app",
            "registry-.example/app",
            "registry..example/app",
            "reg_istry.example/app",
            "[::1]:5000/app",
            "régistry.example/app",
        ];
        for input in refused {
            let error = ImageReference::parse(input).unwrap_err();
            assert!(matches!(error, FormatError::MalformedReference { .. }), "{input}: {error:?}");
        }
    }

    #[test]
    fn canonical_registry_normalizes_hosts_and_names_the_fault() {
        let table = [
            ("LocalHost:5000", "localhost:5000"),
            ("registry.example:443", "registry.example"),
            ("registry.example:80", "registry.example:80"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io:443", "docker.io"),
            ("DOCKER.IO", "docker.io"),
            ("10.0.0.1", "10.0.0.1"),
            ("Mirror:443", "mirror:443"),
            ("localhost:443", "localhost"),
        ];
        for (host, canonical) in table {
            assert_eq!(canonical_registry(host).unwrap(), canonical, "{host}");
        }
        let Err(FormatError::MalformedRegistryHost { host, reason }) = canonical_registry("Reg.example:0443") else {
            panic!("a leading zero was accepted")
        };
        assert_eq!(host, "Reg.example:0443");
        assert!(reason.contains("leading zeros"), "{reason}");
    }

    #[test]
    fn canonical_pattern_rewrites_the_host_and_official_docker_hub_names() {
        let table = [
            ("LocalHost:5000/team-b/*", "localhost:5000/team-b/*"),
            ("Registry.Example:443/team/**", "registry.example/team/**"),
            ("docker.io/nginx", "docker.io/library/nginx"),
            ("index.docker.io/*", "docker.io/library/*"),
            ("docker.io/**", "docker.io/**"),
            ("docker.io/bitnami/*", "docker.io/bitnami/*"),
            ("*.Example.com/app", "*.example.com/app"),
            ("team-b/*", "team-b/*"),
            ("**", "**"),
            ("registry.example:0443/app", "registry.example:0443/app"),
            ("mirror:443/app", "mirror:443/app"),
        ];
        for (pattern, canonical) in table {
            assert_eq!(canonical_pattern(pattern), canonical, "{pattern}");
        }
    }

    #[test]
    fn docker_hub_is_reached_at_its_registry_endpoint() {
        assert_eq!(connection_host("docker.io"), "registry-1.docker.io");
        assert_eq!(connection_host("localhost:5000"), "localhost:5000");
    }
}

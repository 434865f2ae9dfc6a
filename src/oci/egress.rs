//! Where notarium may connect on a registry's behalf: the `[registries]` egress rules (`allow` and `deny` host
//! globs, the plain-HTTP list, the blob stores a registry may redirect to, the realms its credentials may go
//! to), the table of internal addresses, and the two HTTP clients that enforce the rules when a connection is
//! made.
//!
//! A host is decided twice. By name, before any connection: `deny` refuses, a listed host (on `allow` or the
//! plain-HTTP list) is reached with the "listed" client, with `allow` set nothing else is reached, and a
//! literal internal address that is not listed is refused. By address, when the name is resolved: an unlisted
//! host goes through the "public" client, whose resolver drops internal addresses (and refuses a name that
//! has no other), so DNS rebinding cannot slip past the first decision; the listed client's resolver resolves
//! only listed names. Redirects stay on the request's origin or go to a blob store listed for its registry,
//! never from HTTPS to plain HTTP.
//!
//! Owns: deciding whether a host may be contacted. Must not touch: requests and answers (`distribution.rs`).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::{Attempt, Policy};

use crate::config::RegistriesConfig;
use crate::formats::canonical_registry;
use crate::formats::reference::{DOCKER_HUB, connection_host};
use crate::glob::glob_matches;

/// The rule a redirect to another host breaks (what a referrers API sending callers elsewhere meets).
pub(crate) const REDIRECT_OFF_ORIGIN: &str =
    "a redirect stays on the registry's origin or goes to a host listed for it in [registries.blob_stores]";

/// The rule a redirect to another origin breaks for a URL that is not a registry's (a TSA, a CRL).
pub(crate) const REDIRECT_OFF_URL_ORIGIN: &str = "a redirect stays on the origin of the URL asked for";

/// Redirects followed for one request at most.
const MAX_REDIRECTS: usize = 5;
/// The realm Docker Hub's credentials go to without being listed.
const DOCKER_HUB_REALM: &str = "auth.docker.io";

/// Why the egress rules refuse a host: the rule, in notarium's words (names only what the caller sent or
/// the configuration says, never what a name resolved to).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}")]
pub struct Refusal {
    pub rule: String,
}

impl Refusal {
    fn new(rule: impl Into<String>) -> Self {
        Self { rule: rule.into() }
    }

    fn internal() -> Self {
        Self::new(
            "internal addresses (loopback, private, link-local, unique-local, cloud metadata) are reached only for \
             registries listed in [registries] allow or insecure",
        )
    }
}

/// How a host that may be contacted is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Listed by the operator: any address its name resolves to.
    Listed,
    /// Not listed: public addresses only.
    Public,
}

/// A host glob: `*` within the host name; without a port it matches the host on any port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    name: String,
    port: Option<String>,
    text: String,
}

impl HostPattern {
    fn new(text: &str) -> Self {
        let (name, port) = split_port(text);
        Self { name: name.to_owned(), port: port.map(str::to_owned), text: text.to_owned() }
    }

    /// True when `host` (`name[:port]`, canonical) matches.
    fn matches(&self, host: &str) -> bool {
        let (name, port) = split_port(host);
        glob_matches(&self.name, name)
            && self.port.as_deref().is_none_or(|pattern| glob_matches(pattern, port.unwrap_or_default()))
    }

    fn matches_name(&self, name: &str) -> bool {
        glob_matches(&self.name, name)
    }
}

/// `name` and `port` of `host[:port]`; an IPv6 literal keeps its brackets.
fn split_port(host: &str) -> (&str, Option<&str>) {
    let after_brackets = host.rfind(']').map_or(0, |end| end + 1);
    match host[after_brackets..].rfind(':') {
        Some(colon) => (&host[..after_brackets + colon], Some(&host[after_brackets + colon + 1..])),
        None => (host, None),
    }
}

/// What kind of internal address `ip` is, or `None` for a public one.
pub fn internal_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    match () {
        () if ip == Ipv4Addr::new(169, 254, 169, 254) => Some("cloud metadata"),
        () if ip.is_loopback() => Some("loopback"),
        () if ip.is_private() => Some("private"),
        () if a == 100 && (64..128).contains(&b) => Some("shared (CGNAT)"),
        () if ip.is_link_local() => Some("link-local"),
        () if a == 0 => Some("unspecified"),
        () if ip.is_multicast() => Some("multicast"),
        () if a >= 240 => Some("reserved or broadcast"),
        () => None,
    }
}

fn internal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if let Some(v4) = embedded_v4(ip) {
        return internal_v4(v4);
    }
    let first = ip.segments()[0];
    match () {
        () if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => Some("cloud metadata"),
        () if first & 0xfe00 == 0xfc00 => Some("unique-local"),
        () if first & 0xffc0 == 0xfe80 => Some("link-local"),
        () if first & 0xffc0 == 0xfec0 => Some("site-local"),
        () if ip.is_multicast() => Some("multicast"),
        () => None,
    }
}

/// The IPv4 address an IPv6 one carries: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] => Some(low),
        [0, 0, 0, 0, 0, 0, ..] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)),
        _ => None,
    }
}

/// The `[registries]` egress rules, with hosts and globs in canonical form.
#[derive(Debug, Clone, Default)]
pub struct EgressRules {
    allow: Vec<HostPattern>,
    deny: Vec<HostPattern>,
    insecure: HashSet<String>,
    /// Registry glob → the hosts it may redirect blob (and manifest) reads to.
    blob_stores: Vec<(HostPattern, Vec<HostPattern>)>,
    /// Registry → the realms other than its own host its credentials may go to.
    realms: Vec<(String, Vec<HostPattern>)>,
    /// Internal addresses are reached for any host (`notarium verify`: the person at the keyboard names it).
    internal_open: bool,
}

impl EgressRules {
    /// The rules of `[registries]` (hosts already canonical, see `Config::load`).
    pub fn from_config(config: &RegistriesConfig) -> Self {
        let patterns = |globs: &[String]| globs.iter().map(|g| HostPattern::new(g)).collect::<Vec<_>>();
        Self {
            allow: patterns(&config.allow),
            deny: patterns(&config.deny),
            insecure: config.insecure.iter().cloned().collect(),
            blob_stores: config.blob_stores.iter().map(|(r, stores)| (HostPattern::new(r), patterns(stores))).collect(),
            realms: config.auth.iter().map(|(r, auth)| (r.clone(), patterns(&auth.realms))).collect(),
            internal_open: false,
        }
    }

    /// The rules of `notarium verify`: `deny` still refuses and redirects stay restricted, but any host may be
    /// reached on any address, and plain HTTP is spoken to `insecure`.
    pub fn for_local_use(config: &RegistriesConfig, insecure: Vec<String>) -> Self {
        Self { internal_open: true, insecure: insecure.into_iter().collect(), ..Self::from_config(config) }
    }

    /// True when `registry` (canonical) is spoken to over plain HTTP.
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.insecure.contains(registry)
    }

    fn is_listed(&self, host: &str) -> bool {
        self.internal_open || self.insecure.contains(host) || self.allow.iter().any(|p| p.matches(host))
    }

    /// How `host` (a canonical `name[:port]`) may be reached, decided on its name before any connection.
    /// Where the hosts spoken to over plain HTTP come from, as the user sets them.
    fn insecure_setting(&self) -> &'static str {
        if self.internal_open {
            "--insecure-registry (or NOTARIUM_INSECURE_REGISTRIES)"
        } else {
            "[registries] insecure"
        }
    }

    pub fn decide(&self, host: &str) -> Result<Reach, Refusal> {
        if let Some(rule) = self.deny.iter().find(|p| p.matches(host)) {
            return Err(Refusal::new(format!("it matches [registries] deny {:?}", rule.text)));
        }
        if self.is_listed(host) {
            return Ok(Reach::Listed);
        }
        if !self.allow.is_empty() {
            return Err(Refusal::new("it is not listed in [registries] allow or insecure"));
        }
        if literal_ip(host).and_then(internal_kind).is_some() {
            return Err(Refusal::internal());
        }
        Ok(Reach::Public)
    }

    /// How the token realm `realm` named by `registry`'s challenge may be reached: HTTPS (plain HTTP only to
    /// a host on the plain-HTTP list), then [`decide`](Self::decide) on its host.
    pub fn decide_realm(&self, realm: &Url) -> Result<Reach, Refusal> {
        let host = url_host(realm)?;
        let plain_allowed = realm.scheme() == "http" && self.insecure.contains(&host);
        if realm.scheme() != "https" && !plain_allowed {
            let setting = self.insecure_setting();
            return Err(Refusal::new(format!("it must be HTTPS (plain HTTP only to a host in {setting})")));
        }
        self.decide(&host)
    }

    /// Whether `registry`'s credentials may go to `realm`: its own host, or a realm listed for it in
    /// `[registries.auth."HOST"] realms` (Docker Hub's `auth.docker.io` is known).
    pub fn check_credential_realm(&self, registry: &str, realm: &Url) -> Result<(), Refusal> {
        let host = url_host(realm)?;
        let own = host == registry || host == connection_host(registry);
        let docker_hub = registry == DOCKER_HUB && host == DOCKER_HUB_REALM;
        let listed = self.realms.iter().any(|(r, realms)| r == registry && realms.iter().any(|p| p.matches(&host)));
        if own || docker_hub || listed {
            return Ok(());
        }
        Err(Refusal::new(format!(
            "its credentials go only to its own host or a realm listed in [registries.auth.\"{registry}\"] realms"
        )))
    }

    /// Whether a request first sent to `previous[0]` and last to `previous.last()` may follow a redirect to
    /// `next`: on its origin, or (for a registry) to a blob store listed for it.
    fn check_redirect(&self, previous: &[Url], next: &Url, mode: Redirects) -> Result<(), Refusal> {
        let (Some(origin), Some(last)) = (previous.first(), previous.last()) else {
            return Ok(());
        };
        if previous.len() > MAX_REDIRECTS {
            return Err(Refusal::new(format!("more than {MAX_REDIRECTS} redirects")));
        }
        if last.scheme() == "https" && next.scheme() != "https" {
            return Err(Refusal::new("a redirect from HTTPS to plain HTTP is never followed"));
        }
        if same_origin(origin, next) {
            return Ok(());
        }
        if mode == Redirects::SameOrigin {
            return Err(Refusal::new(REDIRECT_OFF_URL_ORIGIN));
        }
        let (registry, target) = (url_host(origin)?, url_host(next)?);
        let stores = self.blob_stores.iter().filter(|(r, _)| r.matches(&registry));
        if !stores.flat_map(|(_, stores)| stores).any(|p| p.matches(&target)) {
            return Err(Refusal::new(REDIRECT_OFF_ORIGIN));
        }
        if let Some(rule) = self.deny.iter().find(|p| p.matches(&target)) {
            return Err(Refusal::new(format!("the redirect target matches [registries] deny {:?}", rule.text)));
        }
        if next.scheme() != "https" && !self.insecure.contains(&target) {
            let setting = self.insecure_setting();
            return Err(Refusal::new(format!("a redirect to plain HTTP goes only to a host in {setting}")));
        }
        // A blob store is reached as its registry is: a literal internal address only for a listed registry.
        if !self.is_listed(&registry) && literal_ip(&target).and_then(internal_kind).is_some() {
            return Err(Refusal::internal());
        }
        Ok(())
    }

    /// True when the listed client may resolve `name` (a host name without port): it is the name of a
    /// listed registry, of a blob store, or of a realm.
    fn is_listed_name(&self, name: &str) -> bool {
        let listed_registry = |host: &String| {
            let (registry_name, _) = split_port(host);
            registry_name == name || split_port(connection_host(host)).0 == name
        };
        self.internal_open
            || self.insecure.iter().any(listed_registry)
            || self
                .allow
                .iter()
                .any(|p| p.matches_name(name) || (p.name == DOCKER_HUB && name == connection_host(DOCKER_HUB)))
            || self.blob_stores.iter().flat_map(|(_, stores)| stores).any(|p| p.matches_name(name))
    }
}

/// `host[:port]` of `url` in canonical form (an IPv6 literal as `[addr]`, which no rule lists).
pub(super) fn url_host(url: &Url) -> Result<String, Refusal> {
    let host = url.host_str().ok_or_else(|| Refusal::new("a URL without a host is not contacted"))?;
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    if host.starts_with('[') {
        return Ok(host);
    }
    canonical_registry(&host).map_err(|_| Refusal::new("a host name that is not in canonical form is not contacted"))
}

fn literal_ip(host: &str) -> Option<IpAddr> {
    split_port(host).0.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// Which redirects the clients follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Redirects {
    /// A registry's: its origin, or a blob store listed for it.
    Registry,
    /// Any other URL's: its origin only.
    SameOrigin,
}

/// The two clients: one for listed hosts, one for the public rest.
pub(super) struct EgressClients {
    pub rules: Arc<EgressRules>,
    listed: reqwest::Client,
    public: reqwest::Client,
}

impl EgressClients {
    /// The clients for registries.
    pub(super) fn new(rules: EgressRules) -> Self {
        Self::with_redirects(rules, Redirects::Registry)
    }

    pub(super) fn with_redirects(rules: EgressRules, redirects: Redirects) -> Self {
        let rules = Arc::new(rules);
        let listed = client(&rules, redirects, ListedNames(rules.clone()));
        let public = client(&rules, redirects, PublicAddresses);
        Self { rules, listed, public }
    }

    /// The client for `host` (canonical), or why it is not contacted.
    pub(super) fn for_host(&self, host: &str) -> Result<&reqwest::Client, Refusal> {
        Ok(self.client(self.rules.decide(host)?))
    }

    /// The client for the token realm `realm`, or why it is not contacted.
    pub(super) fn for_realm(&self, realm: &Url) -> Result<&reqwest::Client, Refusal> {
        Ok(self.client(self.rules.decide_realm(realm)?))
    }

    fn client(&self, reach: Reach) -> &reqwest::Client {
        match reach {
            Reach::Listed => &self.listed,
            Reach::Public => &self.public,
        }
    }
}

fn client(rules: &Arc<EgressRules>, mode: Redirects, resolver: impl Resolve + 'static) -> reqwest::Client {
    let redirects = rules.clone();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("notarium/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(resolver))
        .redirect(Policy::custom(move |attempt: Attempt| {
            match redirects.check_redirect(attempt.previous(), attempt.url(), mode) {
                Ok(()) => attempt.follow(),
                Err(refusal) => {
                    tracing::info!(target_url = %attempt.url(), rule = %refusal.rule, "redirect not followed");
                    attempt.error(refusal)
                }
            }
        }))
        .build()
        .expect("HTTP client builds")
}

/// Resolves only the names of listed hosts, to whatever addresses they have.
struct ListedNames(Arc<EgressRules>);

impl Resolve for ListedNames {
    fn resolve(&self, name: Name) -> Resolving {
        let listed = self.0.is_listed_name(name.as_str());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if !listed {
                return Err(Refusal::new("only listed host names are resolved for listed registries").into());
            }
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Resolves any name to its public addresses only; a name with none is refused.
struct PublicAddresses;

impl Resolve for PublicAddresses {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = addresses.filter(|a| internal_kind(a.ip()).is_none()).collect();
            if public.is_empty() {
                return Err(Refusal::internal().into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_told_apart_from_public_ones() {
        let table = [
            ("127.0.0.1", Some("loopback")),
            ("127.0.0.2", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("172.32.0.1", None),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("shared (CGNAT)")),
            ("100.127.255.255", Some("shared (CGNAT)")),
            ("100.128.0.1", None),
            ("169.254.1.1", Some("link-local")),
            ("169.254.169.254", Some("cloud metadata")),
            ("0.0.0.0", Some("unspecified")),
            ("224.0.0.1", Some("multicast")),
            ("255.255.255.255", Some("reserved or broadcast")),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fe80::1", Some("link-local")),
            ("fc00::1", Some("unique-local")),
            ("fd12:3456::1", Some("unique-local")),
            ("fd00:ec2::254", Some("cloud metadata")),
            ("ff02::1", Some("multicast")),
            ("fec0::1", Some("site-local")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.169.254", Some("cloud metadata")),
            ("::ffff:10.0.0.1", Some("private")),
            ("::ffff:8.8.8.8", None),
            ("::10.0.0.1", Some("private")),
            ("64:ff9b::192.168.0.1", Some("private")),
            ("2002:7f00:1::", Some("loopback")),
            ("2001:4860:4860::8888", None),
            ("2606:4700::1111", None),
        ];
        for (address, kind) in table {
            assert_eq!(internal_kind(address.parse().unwrap()), kind, "{address}");
        }
    }

    fn rules(allow: &[&str], deny: &[&str], insecure: &[&str]) -> EgressRules {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let config = RegistriesConfig {
            allow: strings(allow),
            deny: strings(deny),
            insecure: strings(insecure),
            ..RegistriesConfig::default()
        };
        EgressRules::from_config(&config)
    }

    #[test]
    fn refusals_name_the_plain_http_setting_of_whoever_set_it() {
        let realm = Url::parse("http://auth.example/token").unwrap();
        let served = rules(&[], &[], &[]).decide_realm(&realm).unwrap_err().rule;
        assert!(served.contains("[registries] insecure"), "{served}");
        let local = EgressRules::for_local_use(&RegistriesConfig::default(), vec![]).decide_realm(&realm);
        let local = local.unwrap_err().rule;
        assert!(local.contains("--insecure-registry") && !local.contains("[registries]"), "{local}");
    }

    #[test]
    fn without_allow_public_hosts_are_reached_and_internal_literals_only_when_listed() {
        let r = rules(&[], &[], &["127.0.0.1:5000", "localhost:5000"]);
        assert_eq!(r.decide("registry.example"), Ok(Reach::Public));
        assert_eq!(r.decide("8.8.8.8:5000"), Ok(Reach::Public));
        assert_eq!(r.decide("127.0.0.1:5000"), Ok(Reach::Listed));
        assert_eq!(r.decide("localhost:5000"), Ok(Reach::Listed));
        assert_eq!(r.decide("127.0.0.1:5001"), Err(Refusal::internal()), "another port is another host");
        assert_eq!(r.decide("127.0.0.2:5000"), Err(Refusal::internal()));
        assert_eq!(r.decide("169.254.169.254"), Err(Refusal::internal()));
        assert_eq!(r.decide("10.0.0.1"), Err(Refusal::internal()));
        // An unlisted name is decided on its addresses, by the public client's resolver.
        assert_eq!(r.decide("localhost:6000"), Ok(Reach::Public));
    }

    #[test]
    fn allow_globs_list_hosts_and_deny_wins() {
        let r = rules(&["*.corp.example", "10.0.0.5:5000", "reg.example:*"], &["bad.corp.example"], &[]);
        assert_eq!(r.decide("a.corp.example"), Ok(Reach::Listed));
        assert_eq!(r.decide("a.b.corp.example:8443"), Ok(Reach::Listed), "no port in the glob: any port");
        assert_eq!(r.decide("10.0.0.5:5000"), Ok(Reach::Listed));
        assert_eq!(r.decide("reg.example"), Ok(Reach::Listed));
        assert_eq!(r.decide("reg.example:5000"), Ok(Reach::Listed));
        let refused = |host| r.decide(host).unwrap_err().rule;
        assert!(refused("bad.corp.example:5000").contains("deny \"bad.corp.example\""));
        assert!(refused("evilcorp.example").contains("not listed in [registries] allow"));
        assert!(refused("10.0.0.5:5001").contains("not listed"));
        assert!(refused("public.example").contains("not listed"), "with allow set, nothing else is reached");
        let deny_all_public = rules(&[], &["*"], &[]);
        assert!(deny_all_public.decide("registry.example").is_err());
    }

    #[test]
    fn redirects_stay_on_the_origin_or_go_to_a_listed_blob_store_never_down_to_http() {
        let mut r = rules(&[], &[], &["127.0.0.1:5000"]);
        r.blob_stores =
            vec![(HostPattern::new("ghcr.io"), vec![HostPattern::new("pkg-containers.githubusercontent.com")])];
        let url = |s: &str| Url::parse(s).unwrap();
        let from = [url("https://ghcr.io/v2/a/b/blobs/sha256:00")];
        let check = |previous: &[Url], next: &Url| r.check_redirect(previous, next, Redirects::Registry);
        assert!(check(&from, &url("https://ghcr.io/v2/a/b/blobs/other")).is_ok());
        assert!(check(&from, &url("https://pkg-containers.githubusercontent.com/ghcr1/blobs/x")).is_ok());
        assert!(check(&from, &url("http://ghcr.io/v2/a")).unwrap_err().rule.contains("HTTPS to plain"));
        assert!(check(&from, &url("https://169.254.169.254/latest")).unwrap_err().rule.contains("blob_stores"));
        assert!(check(&from, &url("https://[::1]/x")).is_err());
        let plain = [url("http://127.0.0.1:5000/v2/a/b/manifests/x")];
        assert!(check(&plain, &url("http://127.0.0.1:5000/v2/c")).is_ok());
        assert!(check(&plain, &url("http://127.0.0.2:5000/latest/meta-data/")).is_err());
        let hops = vec![from[0].clone(); MAX_REDIRECTS + 1];
        assert!(check(&hops, &from[0]).unwrap_err().rule.contains("redirects"));
        // A URL that is not a registry's (a TSA) has no blob stores: its origin only.
        let store = url("https://pkg-containers.githubusercontent.com/ghcr1/blobs/x");
        let refusal = r.check_redirect(&from, &store, Redirects::SameOrigin).unwrap_err();
        assert_eq!(refusal.rule, REDIRECT_OFF_URL_ORIGIN);
    }

    #[test]
    fn realms_are_https_on_an_allowed_host_and_credentials_go_only_to_their_own() {
        let r = rules(&[], &[], &["127.0.0.1:5000"]);
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(r.decide_realm(&url("https://auth.example/token")), Ok(Reach::Public));
        assert_eq!(r.decide_realm(&url("http://127.0.0.1:5000/token")), Ok(Reach::Listed));
        assert!(r.decide_realm(&url("http://auth.example/token")).unwrap_err().rule.contains("must be HTTPS"));
        assert_eq!(r.decide_realm(&url("https://127.0.0.2:8443/token")), Err(Refusal::internal()));
        assert_eq!(r.decide_realm(&url("https://[fd00:ec2::254]/token")), Err(Refusal::internal()));
        assert!(r.check_credential_realm("ghcr.io", &url("https://ghcr.io/token")).is_ok());
        assert!(r.check_credential_realm("docker.io", &url("https://auth.docker.io/token")).is_ok());
        assert!(r.check_credential_realm("ghcr.io", &url("https://auth.example/token")).is_err());
    }

    #[test]
    fn the_listed_client_resolves_only_listed_names() {
        let r = rules(&["*.corp.example", "docker.io"], &[], &["localhost:5000"]);
        assert!(r.is_listed_name("localhost") && r.is_listed_name("reg.corp.example"));
        assert!(r.is_listed_name("registry-1.docker.io"), "Docker Hub is reached at its endpoint");
        assert!(!r.is_listed_name("metadata.google.internal"));
    }
}

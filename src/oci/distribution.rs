//! [`Registry`] over the OCI distribution HTTP API (CNCF distribution, Harbor, GHCR, …): anonymous,
//! basic or bearer-token auth, HTTPS except for the configured plain-HTTP allow-list.

use crate::error_chain::root_cause;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};

use super::{Manifest, OciError, PutManifest, Registry, Repository};
use crate::formats::Digest;
use crate::formats::reference::connection_host;
use crate::formats::referrer::ReferrersIndex;
use crate::formats::signature_manifest::{OCI_INDEX, OCI_MANIFEST};

const ACCEPTED_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
const MAX_REFERRERS_PAGES: usize = 100;
const RACING_WRITE_ATTEMPTS: u32 = 4;

/// Credentials for one registry host. The password is never logged or shown in errors.
#[derive(Clone)]
pub struct RegistryCredentials {
    pub username: String,
    pub password: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryCredentials({}, <redacted>)", self.username)
    }
}

/// A distribution-API client shared by all requests.
pub struct DistributionRegistry {
    http: reqwest::Client,
    insecure: HashSet<String>,
    credentials: HashMap<String, RegistryCredentials>,
    tokens: Mutex<HashMap<(String, String), String>>,
}

impl DistributionRegistry {
    pub fn new(insecure: impl IntoIterator<Item = String>, credentials: HashMap<String, RegistryCredentials>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("notarium/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("HTTP client builds");
        Self { http, insecure: insecure.into_iter().collect(), credentials, tokens: Mutex::new(HashMap::new()) }
    }

    /// The repository's API root. The plain-HTTP list and credentials are keyed by the canonical registry
    /// name; only the host connected to may differ (`docker.io` answers at `registry-1.docker.io`).
    fn base_url(&self, repo: &Repository) -> String {
        let scheme = if self.insecure.contains(&repo.registry) { "http" } else { "https" };
        format!("{scheme}://{}/v2/{}", connection_host(&repo.registry), repo.name)
    }

    /// Sends a request, answering one bearer or basic challenge if the registry asks for it.
    async fn send(
        &self,
        repo: &Repository,
        push: bool,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, OciError> {
        let scope = format!("repository:{}:{}", repo.name, if push { "pull,push" } else { "pull" });
        let cached = self.cached_token(&repo.registry, &scope);
        let response = self.dispatch(repo, self.authorize(build(&self.http), repo, cached.as_deref())).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let token = match parse_bearer_challenge(&challenge) {
            Some(bearer) => Some(self.fetch_token(repo, &bearer, &scope).await?),
            None if self.credentials.contains_key(&repo.registry) => None,
            None => return Ok(response),
        };
        if let Some(token) = &token {
            self.tokens.lock().expect("token cache lock").insert((repo.registry.clone(), scope), token.clone());
        }
        self.dispatch(repo, self.authorize(build(&self.http), repo, token.as_deref())).await
    }

    fn cached_token(&self, registry: &str, scope: &str) -> Option<String> {
        let tokens = self.tokens.lock().expect("token cache lock");
        tokens.get(&(registry.to_owned(), scope.to_owned())).cloned()
    }

    fn authorize(&self, request: RequestBuilder, repo: &Repository, token: Option<&str>) -> RequestBuilder {
        match (token, self.credentials.get(&repo.registry)) {
            (Some(token), _) => request.bearer_auth(token),
            (None, Some(c)) => request.basic_auth(&c.username, Some(c.password.as_str())),
            (None, None) => request,
        }
    }

    async fn fetch_token(
        &self,
        repo: &Repository,
        challenge: &BearerChallenge,
        scope: &str,
    ) -> Result<String, OciError> {
        let mut request =
            self.http.get(&challenge.realm).query(&[("service", challenge.service.as_str()), ("scope", scope)]);
        if let Some(c) = self.credentials.get(&repo.registry) {
            request = request.basic_auth(&c.username, Some(c.password.as_str()));
        }
        let response = self.dispatch(repo, request).await?;
        if !response.status().is_success() {
            return Err(OciError::Unauthorized {
                registry: repo.registry.clone(),
                repository: repo.name.clone(),
                status: response.status().as_u16(),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body: TokenResponse = response.json().await.map_err(|e| unreachable_error(repo, &e))?;
        body.token.or(body.access_token).ok_or_else(|| OciError::Unauthorized {
            registry: repo.registry.clone(),
            repository: repo.name.clone(),
            status: 401,
        })
    }

    async fn dispatch(&self, repo: &Repository, request: RequestBuilder) -> Result<Response, OciError> {
        request.send().await.map_err(|e| {
            if is_tls_failure(&e) {
                OciError::TlsFailed { registry: repo.registry.clone(), reason: root_cause(&e) }
            } else {
                unreachable_error(repo, &e)
            }
        })
    }

    async fn refused(&self, repo: &Repository, operation: String, response: Response) -> OciError {
        let status = response.status().as_u16();
        if matches!(status, 401 | 403) {
            return OciError::Unauthorized { registry: repo.registry.clone(), repository: repo.name.clone(), status };
        }
        let body = response.text().await.unwrap_or_default();
        OciError::Refused { registry: repo.registry.clone(), operation, status, body: body.chars().take(300).collect() }
    }

    async fn fetch_manifest(&self, repo: &Repository, reference: &str) -> Result<Option<Manifest>, OciError> {
        let url = format!("{}/manifests/{reference}", self.base_url(repo));
        let response = self.send(repo, false, |c| c.get(&url).header(header::ACCEPT, ACCEPTED_MANIFESTS)).await?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            _ => {
                return Err(self.refused(repo, format!("GET manifest {reference}"), response).await);
            }
        }
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(OCI_MANIFEST)
            .to_owned();
        let announced =
            response.headers().get("Docker-Content-Digest").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = read_capped(repo, response, MAX_MANIFEST_BYTES, || format!("manifest {reference}")).await?;
        let digest = Digest::of(&bytes);
        let expected = Digest::parse(reference).ok().map(|d| d.to_string()).or(announced);
        if expected.is_some_and(|e| e != digest.as_str()) {
            return Err(OciError::DigestMismatch {
                registry: repo.registry.clone(),
                what: format!("manifest {reference}"),
            });
        }
        Ok(Some(Manifest { bytes, media_type: normalize_media_type(&media_type), digest }))
    }

    /// One page of the referrers API and the next page's URL; `None` when the registry has no usable
    /// referrers API: it answers 404 (distribution), 429 or a redirect, was redirected to another origin, or
    /// serves something that is not an image index (GHCR). The fallback tag then stands in.
    async fn referrers_page(
        &self,
        repo: &Repository,
        subject: &Digest,
        url: &str,
    ) -> Result<Option<(ReferrersIndex, Option<String>)>, OciError> {
        let response = self.send(repo, false, |c| c.get(url).header(header::ACCEPT, OCI_INDEX)).await?;
        let status = response.status();
        let elsewhere = reqwest::Url::parse(url).map(|asked| asked.origin()) != Ok(response.url().origin());
        if status == StatusCode::NOT_FOUND
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_redirection()
            || elsewhere
        {
            tracing::debug!(registry = %repo.registry, status = status.as_u16(), elsewhere, "no usable referrers API");
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.refused(repo, format!("GET referrers {subject}"), response).await);
        }
        let next = next_page(response.headers(), &self.base_url(repo));
        let bytes =
            read_capped(repo, response, MAX_MANIFEST_BYTES, || format!("a referrers page of {subject}")).await?;
        match ReferrersIndex::parse(&bytes) {
            Ok(index) => Ok(Some((index, next))),
            Err(_) => {
                tracing::debug!(registry = %repo.registry, "the referrers API answered something that is no image index");
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl Registry for DistributionRegistry {
    async fn get_manifest(&self, repo: &Repository, reference: &str) -> Result<Option<Manifest>, OciError> {
        retry_racing_writes(|| self.fetch_manifest(repo, reference)).await
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PutManifest, OciError> {
        let url = &format!("{}/manifests/{reference}", self.base_url(repo));
        retry_racing_writes(|| async move {
            let put = |c: &reqwest::Client| c.put(url).header(header::CONTENT_TYPE, media_type).body(bytes.to_vec());
            let response = self.send(repo, true, put).await?;
            if !response.status().is_success() {
                return Err(self.refused(repo, format!("PUT manifest {reference}"), response).await);
            }
            let subject_indexed = response.headers().contains_key("OCI-Subject");
            Ok(PutManifest { digest: Digest::of(bytes), subject_indexed })
        })
        .await
    }

    async fn get_referrers(&self, repo: &Repository, subject: &Digest) -> Result<Option<ReferrersIndex>, OciError> {
        let mut url = format!("{}/referrers/{subject}", self.base_url(repo));
        let mut index: Option<ReferrersIndex> = None;
        for _ in 0..MAX_REFERRERS_PAGES {
            let Some((page, next)) = retry_racing_writes(|| self.referrers_page(repo, subject, &url)).await? else {
                return Ok(None);
            };
            match &mut index {
                Some(index) => index.manifests.extend(page.manifests),
                None => index = Some(page),
            }
            match next {
                Some(next) => url = next,
                None => return Ok(index),
            }
        }
        Err(OciError::Refused {
            registry: repo.registry.clone(),
            operation: format!("GET referrers {subject}"),
            status: 200,
            body: format!("more than {MAX_REFERRERS_PAGES} pages"),
        })
    }

    async fn get_blob(&self, repo: &Repository, digest: &Digest, max_bytes: usize) -> Result<Vec<u8>, OciError> {
        let url = format!("{}/blobs/{digest}", self.base_url(repo));
        let response = self.send(repo, false, |c| c.get(&url)).await?;
        match response.status() {
            StatusCode::NOT_FOUND => {
                return Err(OciError::BlobNotFound { registry: repo.registry.clone(), digest: digest.to_string() });
            }
            s if s.is_success() => {}
            _ => {
                return Err(self.refused(repo, format!("GET blob {digest}"), response).await);
            }
        }
        let bytes = read_capped(repo, response, max_bytes, || format!("blob {digest}")).await?;
        if Digest::of(&bytes) != *digest {
            return Err(OciError::DigestMismatch { registry: repo.registry.clone(), what: format!("blob {digest}") });
        }
        Ok(bytes)
    }

    async fn put_blob(&self, repo: &Repository, bytes: &[u8]) -> Result<Digest, OciError> {
        let digest = Digest::of(bytes);
        let blob_url = format!("{}/blobs/{digest}", self.base_url(repo));
        let head = self.send(repo, true, |c| c.request(Method::HEAD, &blob_url)).await?;
        if head.status().is_success() {
            return Ok(digest);
        }
        let start_url = format!("{}/blobs/uploads/", self.base_url(repo));
        let started = self.send(repo, true, |c| c.post(&start_url)).await?;
        if started.status() != StatusCode::ACCEPTED {
            return Err(self.refused(repo, "start blob upload".into(), started).await);
        }
        let location = upload_location(&started, &self.base_url(repo), repo)?;
        let separator = if location.contains('?') { '&' } else { '?' };
        let finish_url = format!("{location}{separator}digest={digest}");
        let finished = self
            .send(repo, true, |c| {
                c.put(&finish_url).header(header::CONTENT_TYPE, "application/octet-stream").body(bytes.to_vec())
            })
            .await?;
        if !finished.status().is_success() {
            return Err(self.refused(repo, format!("upload blob {digest}"), finished).await);
        }
        Ok(digest)
    }
}

/// Runs `request` again, after a growing pause, while it fails the way a concurrent write of the same tag
/// or blob makes distribution 2.8 fail: it rewrites link files in place, so a reader can find one empty
/// (HTTP 500, or a blob it holds reported unknown when a manifest is checked).
async fn retry_racing_writes<T, F>(mut request: impl FnMut() -> F) -> Result<T, OciError>
where
    F: Future<Output = Result<T, OciError>>,
{
    let mut pause = Duration::from_millis(20);
    for _ in 1..RACING_WRITE_ATTEMPTS {
        match request().await {
            Err(OciError::Refused { status, body, .. }) if status >= 500 || body.contains("MANIFEST_BLOB_UNKNOWN") => {
                tracing::debug!(status, "registry failed as under a concurrent write; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            done => return done,
        }
    }
    request().await
}

fn normalize_media_type(content_type: &str) -> String {
    let bare = content_type.split(';').next().unwrap_or_default().trim();
    match bare {
        "" => OCI_MANIFEST.to_owned(),
        "application/vnd.docker.distribution.manifest.list.v2+json" => OCI_INDEX.to_owned(),
        other => other.to_owned(),
    }
}

fn upload_location(response: &Response, base: &str, repo: &Repository) -> Result<String, OciError> {
    let location =
        response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| OciError::Refused {
            registry: repo.registry.clone(),
            operation: "start blob upload".into(),
            status: response.status().as_u16(),
            body: "no Location header".into(),
        })?;
    Ok(absolute_url(base, location))
}

/// `location` as an absolute URL; a registry may answer with a path on its own origin.
fn absolute_url(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let origin_end = base.find("/v2/").unwrap_or(base.len());
    format!("{}{location}", &base[..origin_end])
}

/// The `rel="next"` target of a paginated answer's `Link` header.
fn next_page(headers: &header::HeaderMap, base: &str) -> Option<String> {
    let links = headers.get_all(header::LINK).iter().filter_map(|v| v.to_str().ok());
    let next = links.flat_map(|v| v.split(',')).find(|link| link.contains("rel=\"next\""))?;
    let target = next.split_once('<')?.1.split_once('>')?.0;
    Some(absolute_url(base, target))
}

/// The body of `response`, read chunk by chunk: [`OciError::TooLarge`] as soon as the announced length or
/// the bytes received pass `limit`, so nothing past the cap is ever held.
async fn read_capped(
    repo: &Repository,
    mut response: Response,
    limit: usize,
    what: impl Fn() -> String,
) -> Result<Vec<u8>, OciError> {
    let too_large = || OciError::TooLarge { registry: repo.registry.clone(), what: what(), limit };
    let announced = response.content_length().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(announced.unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable_error(repo, &e))? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

struct BearerChallenge {
    realm: String,
    service: String,
}

fn parse_bearer_challenge(header_value: &str) -> Option<BearerChallenge> {
    let params = header_value.strip_prefix("Bearer ")?;
    let mut realm = None;
    let mut service = String::new();
    for part in params.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        let value = value.trim_matches('"').to_owned();
        match key {
            "realm" => realm = Some(value),
            "service" => service = value,
            _ => {}
        }
    }
    Some(BearerChallenge { realm: realm?, service })
}

fn is_tls_failure(error: &reqwest::Error) -> bool {
    mentions_rustls(error)
}

/// io::Error hides its payload from `source()`, and hyper nests io errors, so look inside each one.
fn mentions_rustls(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<rustls::Error>() {
        return true;
    }
    let inside_io =
        error.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).is_some_and(|inner| mentions_rustls(inner));
    inside_io || error.source().is_some_and(mentions_rustls)
}

fn unreachable_error(repo: &Repository, error: &reqwest::Error) -> OciError {
    let reason = if error.is_timeout() { "timed out".to_owned() } else { root_cause(error) };
    OciError::Unreachable { registry: repo.registry.clone(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_distribution_bearer_challenge() {
        let c = parse_bearer_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.example/token");
        assert_eq!(c.service, "registry.example");
        assert!(parse_bearer_challenge("Basic realm=\"x\"").is_none());
    }

    #[test]
    fn docker_hub_is_contacted_at_its_endpoint_and_the_plain_http_list_is_keyed_by_canonical_name() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = DistributionRegistry::new(["localhost:5000".to_owned()], HashMap::new());
        let repo = |registry: &str, name: &str| Repository { registry: registry.into(), name: name.into() };
        assert_eq!(
            registry.base_url(&repo("docker.io", "library/nginx")),
            "https://registry-1.docker.io/v2/library/nginx"
        );
        assert_eq!(registry.base_url(&repo("localhost:5000", "team/app")), "http://localhost:5000/v2/team/app");
    }

    #[test]
    fn follows_a_relative_or_absolute_next_link_and_nothing_else() {
        let base = "https://registry.example/v2/demo/app";
        let mut headers = header::HeaderMap::new();
        assert_eq!(next_page(&headers, base), None);
        headers.append(header::LINK, r#"<https://elsewhere.example/a>; rel="prev""#.parse().unwrap());
        assert_eq!(next_page(&headers, base), None);
        headers.append(header::LINK, r#"</v2/demo/app/referrers/sha256:ab?n=2&last=x>; rel="next""#.parse().unwrap());
        let next = next_page(&headers, base);
        assert_eq!(next.as_deref(), Some("https://registry.example/v2/demo/app/referrers/sha256:ab?n=2&last=x"));
    }

    /// A plain-HTTP server answering every request 200 with `headers` and then `body` chunks, the same
    /// one forever when `endless`, until the client goes away. Returns its `host:port`.
    async fn hostile_server(headers: &'static str, endless: bool) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0; 4096];
                    let _ = socket.read(&mut request).await;
                    let head = format!("HTTP/1.1 200 OK\r\n{headers}\r\n");
                    socket.write_all(head.as_bytes()).await?;
                    let chunk = format!("1000\r\n{}\r\n", "x".repeat(0x1000));
                    if endless {
                        loop {
                            socket.write_all(chunk.as_bytes()).await?;
                        }
                    }
                    std::io::Result::Ok(())
                });
            }
        });
        host
    }

    async fn blob_from(host: &str, max_bytes: usize) -> Result<Vec<u8>, OciError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = DistributionRegistry::new([host.to_owned()], HashMap::new());
        let repo = Repository { registry: host.to_owned(), name: "demo/app".into() };
        registry.get_blob(&repo, &Digest::of(b"anything"), max_bytes).await
    }

    #[tokio::test]
    async fn a_blob_announced_larger_than_the_cap_is_refused_before_its_body() {
        let host = hostile_server("Content-Length: 1073741824\r\n", false).await;
        let error = blob_from(&host, 1024).await.unwrap_err();
        assert!(matches!(error, OciError::TooLarge { limit: 1024, .. }), "{error}");
        assert_eq!(
            error.to_string(),
            format!("registry {host} served blob {} larger than the limit of 1024 bytes", Digest::of(b"anything"))
        );
    }

    #[tokio::test]
    async fn an_endless_blob_is_cut_off_at_the_cap() {
        let host = hostile_server("Transfer-Encoding: chunked\r\n", true).await;
        let error = blob_from(&host, 64 * 1024).await.unwrap_err();
        assert!(matches!(error, OciError::TooLarge { limit: 65536, .. }), "{error}");
    }

    #[test]
    fn credentials_never_print_the_password() {
        let c = RegistryCredentials { username: "ci".into(), password: zeroize::Zeroizing::new("hunter2".into()) };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}

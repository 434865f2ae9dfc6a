//! Outbound HTTP to URLs that are not registries: a timestamp authority (`[tsa] url`), a certificate's CRL
//! distribution point. The same egress rules as registry access decide the host before any connection
//! (`deny`, `allow`, internal addresses only for listed hosts, a resolver that drops internal addresses
//! of unlisted names); a redirect stays on the URL's origin and never goes from HTTPS to plain HTTP; each
//! request has a deadline and its answer is read within a cap.
//!
//! Plain HTTP is spoken to any host the rules allow, because what is fetched this way is signed and the
//! caller verifies it (a timestamp token, a CRL); the transport is not what makes it trustworthy.
//!
//! Owns: sending one request and reading its answer within bounds. Must not touch: what the answer means
//! (callers parse and verify it) and registries (`distribution.rs`). Errors name the host and the rule or
//! status, never bytes the remote sent.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode, Url, header};

use super::distribution::find_in_chain;
use super::egress::{EgressClients, EgressRules, Redirects, Refusal, url_host};
use crate::error_chain::root_cause;
use crate::http_body::{BodyError, read_capped};

/// Why an outbound request gave no usable answer. `host` is the URL's `host[:port]` as the caller gave it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("{host} is not contacted: {rule}")]
    NotAllowed { host: String, rule: String },
    #[error("{host} could not be reached")]
    Unreachable { host: String },
    #[error("{host} did not answer within {seconds} s")]
    TimedOut { host: String, seconds: u64 },
    #[error("{host} answered HTTP {status}")]
    Status { host: String, status: u16 },
    #[error("{host}'s answer is larger than the limit of {limit} bytes")]
    TooLarge { host: String, limit: usize },
}

/// An HTTP client for non-registry URLs under the egress rules.
pub struct Outbound {
    clients: EgressClients,
    timeout: Duration,
}

impl Outbound {
    /// A client deciding hosts by `rules`, giving each request (answer included) at most `timeout`.
    pub fn new(rules: EgressRules, timeout: Duration) -> Self {
        Self { clients: EgressClients::with_redirects(rules, Redirects::SameOrigin), timeout }
    }

    /// The body of a successful `GET url`, at most `max_bytes`.
    pub async fn get(&self, url: &Url, max_bytes: usize) -> Result<Vec<u8>, OutboundError> {
        self.send(url, max_bytes, |client| client.get(url.clone())).await
    }

    /// The body of a successful `POST url` of `body` as `content_type`, at most `max_bytes`.
    pub async fn post(
        &self,
        url: &Url,
        content_type: &str,
        body: Vec<u8>,
        max_bytes: usize,
    ) -> Result<Vec<u8>, OutboundError> {
        let request = |client: &reqwest::Client| {
            client.post(url.clone()).header(header::CONTENT_TYPE, content_type).body(body.clone())
        };
        self.send(url, max_bytes, request).await
    }

    /// `POST url` of `body` as `content_type`, whatever the status: the status and the body, at most
    /// `max_bytes` (for protocols whose error answers carry data, as a tlog-witness's 409 does).
    pub async fn post_answer(
        &self,
        url: &Url,
        content_type: &str,
        body: Vec<u8>,
        max_bytes: usize,
    ) -> Result<(u16, Vec<u8>), OutboundError> {
        let request =
            |client: &reqwest::Client| client.post(url.clone()).header(header::CONTENT_TYPE, content_type).body(body);
        self.send_any(url, max_bytes, request).await.map(|(status, body)| (status.as_u16(), body))
    }

    async fn send(
        &self,
        url: &Url,
        max_bytes: usize,
        build: impl FnOnce(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Vec<u8>, OutboundError> {
        let (host, response) = self.request(url, build).await?;
        if response.status() != StatusCode::OK {
            return Err(OutboundError::Status { host, status: response.status().as_u16() });
        }
        self.read_body(&host, response, max_bytes).await
    }

    async fn send_any(
        &self,
        url: &Url,
        max_bytes: usize,
        build: impl FnOnce(&reqwest::Client) -> RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), OutboundError> {
        let (host, response) = self.request(url, build).await?;
        let status = response.status();
        Ok((status, self.read_body(&host, response, max_bytes).await?))
    }

    /// Sends the request `build` makes, once the egress rules allow `url`'s host.
    async fn request(
        &self,
        url: &Url,
        build: impl FnOnce(&reqwest::Client) -> RequestBuilder,
    ) -> Result<(String, reqwest::Response), OutboundError> {
        let host = display_host(url);
        let client = self.client_for(url).map_err(|refusal| not_allowed(&host, refusal))?;
        let request = build(client).timeout(self.timeout);
        let response = request.send().await.map_err(|e| self.transport_error(&host, &e))?;
        Ok((host, response))
    }

    async fn read_body(
        &self,
        host: &str,
        response: reqwest::Response,
        max_bytes: usize,
    ) -> Result<Vec<u8>, OutboundError> {
        let host = host.to_owned();
        let body = tokio::time::timeout(self.timeout, read_capped(response, max_bytes))
            .await
            .map_err(|_| self.timed_out(&host))?;
        body.map_err(|error| match error {
            BodyError::TooLarge(limit) => OutboundError::TooLarge { host: host.clone(), limit },
            BodyError::Transport(e) => self.transport_error(&host, &e),
        })
    }

    /// The client for `url`'s host, decided by name before any connection: http or https only.
    fn client_for(&self, url: &Url) -> Result<&reqwest::Client, Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal { rule: "only http and https URLs are contacted".into() });
        }
        self.clients.for_host(&url_host(url)?)
    }

    fn timed_out(&self, host: &str) -> OutboundError {
        OutboundError::TimedOut { host: host.to_owned(), seconds: self.timeout.as_secs().max(1) }
    }

    /// A request that got no answer: refused by the egress rules (a redirect, or a name that resolved to
    /// internal addresses only), timed out, or unreachable. The low-level reason goes to the log only.
    fn transport_error(&self, host: &str, error: &reqwest::Error) -> OutboundError {
        if let Some(refusal) = find_in_chain::<Refusal>(error) {
            return not_allowed(host, refusal.clone());
        }
        if error.is_timeout() {
            return self.timed_out(host);
        }
        tracing::warn!(%host, reason = %root_cause(error), "outbound request failed");
        OutboundError::Unreachable { host: host.to_owned() }
    }
}

/// `host[:port]` of `url` for messages (the URL's own spelling; no path or query).
fn display_host(url: &Url) -> String {
    let host = url.host_str().unwrap_or("a URL without a host");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn not_allowed(host: &str, refusal: Refusal) -> OutboundError {
    tracing::info!(%host, rule = %refusal.rule, "host not contacted: egress rules");
    OutboundError::NotAllowed { host: host.to_owned(), rule: refusal.rule }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::RegistriesConfig;

    /// A server on 127.0.0.1 answering every request with `answer` (raw HTTP/1.1 bytes); `None` never
    /// answers. Its `host:port`.
    async fn serve(answer: Option<Vec<u8>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    match answer {
                        Some(answer) => {
                            let _ = socket.write_all(&answer).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        address
    }

    fn ok(body: &[u8]) -> Vec<u8> {
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
        [head.as_bytes(), body].concat()
    }

    fn outbound(allow: &[&str]) -> Outbound {
        let config =
            RegistriesConfig { allow: allow.iter().map(|s| s.to_string()).collect(), ..RegistriesConfig::default() };
        Outbound::new(EgressRules::from_config(&config), Duration::from_secs(2))
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[tokio::test]
    async fn a_listed_host_is_reached_within_the_cap() {
        let host = serve(Some(ok(b"stamped"))).await;
        let client = outbound(&[&host]);
        let tsa = url(&format!("http://{host}/tsa"));
        let body = client.post(&tsa, "application/timestamp-query", vec![1], 64).await;
        assert_eq!(body.unwrap(), b"stamped");
    }

    #[tokio::test]
    async fn an_internal_host_that_is_not_listed_is_refused_before_any_connection() {
        let host = serve(Some(ok(b"secret"))).await;
        let err = outbound(&[]).get(&url(&format!("http://{host}/latest")), 64).await.unwrap_err();
        let OutboundError::NotAllowed { rule, .. } = &err else { panic!("{err:?}") };
        assert!(rule.contains("internal addresses"), "{rule}");
        // A name that resolves to internal addresses only is refused by the resolver (DNS rebinding).
        let port = host.rsplit_once(':').unwrap().1;
        let err = outbound(&[]).get(&url(&format!("http://localhost:{port}/")), 64).await.unwrap_err();
        assert!(matches!(&err, OutboundError::NotAllowed { rule, .. } if rule.contains("internal")), "{err:?}");
        // With allow set, an unlisted host is refused; deny wins over allow.
        let err = outbound(&["tsa.example"]).get(&url("http://other.example/"), 64).await.unwrap_err();
        assert!(err.to_string().contains("not listed in [registries] allow"), "{err}");
        let err = outbound(&[]).get(&url("file:///etc/passwd"), 64).await.unwrap_err();
        assert!(err.to_string().contains("only http and https"), "{err}");
    }

    #[tokio::test]
    async fn an_answer_over_the_cap_is_refused_announced_or_not() {
        let host = serve(Some(ok(&[b'x'; 1000]))).await;
        let err = outbound(&[&host]).get(&url(&format!("http://{host}/")), 999).await.unwrap_err();
        assert_eq!(err, OutboundError::TooLarge { host: host.clone(), limit: 999 });
        let unannounced = [&b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"[..], &[b'y'; 1000]].concat();
        let host = serve(Some(unannounced)).await;
        let err = outbound(&[&host]).get(&url(&format!("http://{host}/")), 999).await.unwrap_err();
        assert!(matches!(err, OutboundError::TooLarge { limit: 999, .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_redirect_off_the_origin_is_not_followed() {
        let elsewhere = serve(Some(ok(b"elsewhere"))).await;
        let redirect = format!("HTTP/1.1 302 Found\r\nlocation: http://{elsewhere}/x\r\ncontent-length: 0\r\n\r\n");
        let host = serve(Some(redirect.into_bytes())).await;
        let err = outbound(&[&host, &elsewhere]).get(&url(&format!("http://{host}/")), 64).await.unwrap_err();
        assert_eq!(err, OutboundError::NotAllowed { host, rule: super::super::egress::REDIRECT_OFF_URL_ORIGIN.into() });
    }

    #[tokio::test]
    async fn an_error_status_and_silence_are_named_without_the_remote_text() {
        let answer = b"HTTP/1.1 500 Internal\r\ncontent-length: 9\r\nconnection: close\r\n\r\n<script>".to_vec();
        let host = serve(Some(answer)).await;
        let err = outbound(&[&host]).get(&url(&format!("http://{host}/")), 64).await.unwrap_err();
        assert_eq!(err.to_string(), format!("{host} answered HTTP 500"));
        let host = serve(None).await;
        let client = Outbound::new(outbound(&[&host]).clients.rules.as_ref().clone(), Duration::from_millis(300));
        let err = client.get(&url(&format!("http://{host}/")), 64).await.unwrap_err();
        assert!(matches!(err, OutboundError::TimedOut { .. }), "{err:?}");
    }
}

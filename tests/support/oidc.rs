//! A CI OIDC issuer the tests control (an ES256 key in a JWKS file that `[[auth.oidc]] jwks_file` trusts) and
//! a local HTTP server that hands out its ID tokens as GitHub's Actions token endpoint does. Owns: the keys,
//! the claims and the endpoint; must not start notarium.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tempfile::TempDir;

use super::{ec_key, unix_now};

/// The issuer's name (its tokens' `iss`).
pub(crate) const CI_ISSUER: &str = "https://ci-issuer.example.test";

/// The issuer: signs ID tokens with claims the test chooses.
pub(crate) struct TestIssuer {
    dir: TempDir,
    key: jsonwebtoken::EncodingKey,
}

impl TestIssuer {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (key, jwk) = ec_key(11, "ci-1");
        std::fs::write(dir.path().join("jwks.json"), json!({"keys": [jwk]}).to_string()).unwrap();
        Self { dir, key }
    }

    /// The `[[auth.oidc]]` table trusting this issuer for `audience`, followed by `rules` (TOML
    /// `[[auth.oidc.rules]]` tables).
    pub(crate) fn config(&self, audience: &str, rules: &str) -> String {
        let jwks = self.dir.path().join("jwks.json");
        format!(
            "[[auth.oidc]]\nissuer = \"{CI_ISSUER}\"\naudience = \"{audience}\"\njwks_file = \"{}\"\n\n{rules}\n",
            jwks.display()
        )
    }

    /// An ES256 ID token for `audience` valid for ten minutes, with `claims` (e.g. repository, ref,
    /// workflow, sub) over the registered ones.
    pub(crate) fn token(&self, audience: &str, claims: &Value) -> String {
        let now = unix_now();
        let mut all = json!({"iss": CI_ISSUER, "aud": audience, "iat": now, "nbf": now - 5, "exp": now + 600});
        for (name, value) in claims.as_object().unwrap() {
            all[name] = value.clone();
        }
        let header = jsonwebtoken::Header {
            kid: Some("ci-1".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256)
        };
        jsonwebtoken::encode(&header, &all, &self.key).unwrap()
    }
}

/// A local stand-in for the Actions ID token endpoint: `GET <url>&audience=AUD` with
/// `Authorization: bearer <request_token>` answers `{"count": 1, "value": "<JWT for AUD>"}`; a wrong or
/// missing request token is a 401, a missing audience a 400.
pub(crate) struct ActionsTokenEndpoint {
    /// What GitHub puts in ACTIONS_ID_TOKEN_REQUEST_URL (it already has a query).
    pub(crate) url: String,
    /// What GitHub puts in ACTIONS_ID_TOKEN_REQUEST_TOKEN.
    pub(crate) request_token: String,
    /// Every ID token handed out.
    pub(crate) issued: Arc<Mutex<Vec<String>>>,
    /// The audiences asked for, in order.
    pub(crate) audiences: Arc<Mutex<Vec<String>>>,
}

impl ActionsTokenEndpoint {
    /// Serves ID tokens of `issuer` carrying `claims` for the audience asked for.
    pub(crate) fn start(issuer: Arc<TestIssuer>, claims: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/_apis/distributedtask/idtoken?api-version=2.0", listener.local_addr().unwrap());
        let request_token = format!("ghs_request{}", unix_now());
        let (issued, audiences) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        let expected = format!("bearer {request_token}");
        let (issued_log, audience_log) = (issued.clone(), audiences.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let Some((target, authorization)) = read_request(&stream) else { continue };
                let answer = match (authorization.as_deref() == Some(expected.as_str()), audience_of(&target)) {
                    (false, _) => (401, json!({"message": "bad request token"})),
                    (true, None) => (400, json!({"message": "audience missing"})),
                    (true, Some(audience)) => {
                        let token = issuer.token(&audience, &claims);
                        audience_log.lock().unwrap().push(audience);
                        issued_log.lock().unwrap().push(token.clone());
                        (200, json!({"count": 1, "value": token}))
                    }
                };
                respond(stream, answer.0, &answer.1);
            }
        });
        Self { url, request_token, issued, audiences }
    }

    /// The variables GitHub sets in a job that may request ID tokens.
    pub(crate) fn variables(&self) -> [(&'static str, String); 2] {
        [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", self.url.clone()),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", self.request_token.clone()),
        ]
    }
}

/// The request target and the `Authorization` header of the request on `stream`.
fn read_request(stream: &TcpStream) -> Option<(String, Option<String>)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let target = line.split_whitespace().nth(1)?.to_owned();
    let mut authorization = None;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            return Some((target, authorization));
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
}

fn audience_of(target: &str) -> Option<String> {
    let url = reqwest::Url::parse(&format!("http://endpoint{target}")).ok()?;
    url.query_pairs().find(|(name, _)| name == "audience").map(|(_, value)| value.into_owned())
}

fn respond(mut stream: TcpStream, status: u16, body: &Value) {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes()));
}

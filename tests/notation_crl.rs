//! CRLs fetched from the distribution points of Notary Project chains, through `POST /v1/verify` with real
//! notation 1.3.2 signatures, an openssl CA and a real HTTP server serving openssl-made CRLs (it counts the
//! requests per path): a revoked leaf is denied and a good one allowed; two signatures naming one
//! distribution point make one request, and a second verify is served from the in-memory cache; a host the
//! egress rules refuse is never contacted (a listener records connections), `strict` denying and
//! `permissive` logging the unknown status with the host named, and a cached CRL file serving offline; an
//! oversized CRL, a CRL signed by another key and a CRL past its nextUpdate (fetched again, never kept)
//! leave the status unknown. Simultaneous verifies of eight images by one leaf share one fetch (the server holds its
//! answer a while, so that they overlap).

use crate::support;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::{Notarium, Notation, Registry, reasons};

/// An HTTP/1.1 server on 127.0.0.1 answering `GET /<name>` with `files[name]` (404 otherwise), each
/// connection on its own thread after `hold` (none unless set), counting the requests per path and the
/// connections accepted.
struct CrlServer {
    host: String,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    connections: Arc<Mutex<usize>>,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hold: Arc<Mutex<Duration>>,
}

impl CrlServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let server = Self {
            host,
            requests: Arc::default(),
            connections: Arc::default(),
            files: Arc::default(),
            hold: Arc::default(),
        };
        let (requests, connections, files, hold) =
            (server.requests.clone(), server.connections.clone(), server.files.clone(), server.hold.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                *connections.lock().unwrap() += 1;
                let (requests, files, hold) = (requests.clone(), files.clone(), *hold.lock().unwrap());
                std::thread::spawn(move || answer(stream, &requests, &files, hold));
            }
        });
        server
    }

    /// Makes every later answer wait `hold` first.
    fn hold(&self, hold: Duration) {
        *self.hold.lock().unwrap() = hold;
    }

    fn serve(&self, name: &str, body: Vec<u8>) {
        self.files.lock().unwrap().insert(name.to_owned(), body);
    }

    fn requests(&self, name: &str) -> usize {
        self.requests.lock().unwrap().get(name).copied().unwrap_or_default()
    }

    fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

/// Reads one request from `stream`, counts it, waits `hold` and answers with the file it names (or 404).
fn answer(
    mut stream: std::net::TcpStream,
    requests: &Mutex<HashMap<String, usize>>,
    files: &Mutex<HashMap<String, Vec<u8>>>,
    hold: Duration,
) {
    let mut line = String::new();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_owned();
    *requests.lock().unwrap().entry(path.clone()).or_default() += 1;
    std::thread::sleep(hold);
    let body = files.lock().unwrap().get(&path).cloned();
    let head = match &body {
        Some(body) => format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()),
        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
    };
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body.unwrap_or_default());
}

/// Makes, in `dir`, an openssl root → intermediate CA and one code-signing leaf per `(name, CRL URL)`,
/// `revoked` revoked; the intermediate's CRL (`int.crl`, DER, due in a day), the same CRL signed by an
/// impostor with the intermediate's name (`forged.crl`) and one whose nextUpdate has passed (`stale.crl`).
fn make_ca(dir: &Path, leaves: &[(&str, String)]) {
    let mut sections = String::new();
    for (name, url) in leaves {
        sections.push_str(&format!(
            "[leaf_{name}]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=codeSigning\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n\
             crlDistributionPoints=URI:{url}\n"
        ));
    }
    let names: Vec<&str> = leaves.iter().map(|(name, _)| *name).collect();
    let script = format!(
        r#"set -euo pipefail
mkdir -p issued && : > index.txt && echo 1000 > serial && echo 01 > crlnumber
cat > ca.cnf <<CNF
[ca]
default_ca = test
[test]
dir = .
database = index.txt
new_certs_dir = issued
serial = serial
crlnumber = crlnumber
default_md = sha256
default_crl_days = 1
policy = anything
unique_subject = no
copy_extensions = none
[anything]
countryName = optional
stateOrProvinceName = optional
organizationName = optional
commonName = supplied
[intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
{sections}
CNF
ec() {{ openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null; }}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -out root.crt -days 30 \
  -subj "/C=US/ST=WA/O=Crl/CN=Crl Root" -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
ec intermediate "/C=US/ST=WA/O=Crl/CN=Crl Intermediate"
openssl ca -batch -config ca.cnf -cert root.crt -keyfile root.key -extensions intermediate -days 30 \
  -in intermediate.csr -out intermediate.crt -notext 2>/dev/null
for leaf in {names}; do
  ec "$leaf" "/C=US/ST=WA/O=Crl/CN=$leaf"
  openssl ca -batch -config ca.cnf -cert intermediate.crt -keyfile intermediate.key -extensions "leaf_$leaf" \
    -days 2 -in "$leaf.csr" -out "$leaf.crt" -notext 2>/dev/null
  cat "$leaf.crt" intermediate.crt root.crt > "$leaf-chain.pem"
done
openssl ca -config ca.cnf -cert intermediate.crt -keyfile intermediate.key -revoke revoked.crt 2>/dev/null
gencrl() {{ openssl ca -gencrl -config ca.cnf -cert "$1.crt" -keyfile "$1.key" "${{@:3}}" -out "$2.pem" 2>/dev/null
  openssl crl -in "$2.pem" -outform DER -out "$2"; }}
gencrl intermediate int.crl
ec impostor "/C=US/ST=WA/O=Crl/CN=Crl Intermediate"
openssl x509 -req -in impostor.csr -signkey impostor.key -days 30 -out impostor.crt 2>/dev/null
gencrl impostor forged.crl
gencrl intermediate stale.crl -crl_lastupdate "$(date -u -d '-3 days' +%Y%m%d%H%M%SZ)" \
  -crl_nextupdate "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)"
"#,
        names = names.join(" ")
    );
    let out = Command::new("bash").arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl CA: {}", String::from_utf8_lossy(&out.stderr));
}

struct Setup {
    registry: Registry,
    notarium: Notarium,
    notation: Notation,
    crls: CrlServer,
    refused: CrlServer,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// Pushes an image to `nc/REPO`, signs it with notation's key `key`; the image by digest.
    fn signed(&self, repo: &str, key: &str) -> String {
        self.notation.signed_image(&self.registry, &format!("nc/{repo}"), &format!("crl {repo} {key}"), key, &[])
    }

    fn verify(&self, image: &str) -> Value {
        self.notarium.verify_image(image)
    }
}

/// A registry, the CRL server (listed as an insecure registry, so the egress rules allow it), a listener
/// nobody lists, the CA with one leaf per case, and notarium with a strict policy (`nc/s-*`) and a permissive
/// one (`nc/p-*`) trusting the CA's root, with no cached CRL file, and a strict one with the intermediate's
/// CRL as a cached file (`nc/c-*`).
fn start() -> Setup {
    let registry = Registry::start();
    let (crls, refused) = (CrlServer::start(), CrlServer::start());
    let dir = tempfile::tempdir().unwrap();
    let at = |host: &str, name: &str| format!("http://{host}/{name}");
    let leaves = [
        ("good", at(&crls.host, "int.crl")),
        ("revoked", at(&crls.host, "int.crl")),
        ("oversized", at(&crls.host, "big.crl")),
        ("forged", at(&crls.host, "forged.crl")),
        ("stale", at(&crls.host, "stale.crl")),
        ("unlisted", at(&refused.host, "int.crl")),
    ];
    make_ca(dir.path(), &leaves);
    for name in ["int.crl", "forged.crl", "stale.crl"] {
        crls.serve(name, std::fs::read(dir.path().join(name)).unwrap());
    }
    crls.serve("big.crl", vec![0x30; 4 * 1024 * 1024 + 1]);
    let notation = Notation::new();
    for (name, _) in &leaves {
        notation.add_key(name, &dir.path().join(format!("{name}.key")), &dir.path().join(format!("{name}-chain.pem")));
    }
    let host = &registry.host;
    let policy = |name: &str, glob: &str, level: &str, crls: &str| {
        format!(
            "  - name: {name}\n    images: [\"{host}/nc/{glob}\"]\n    authorities:\n      - notation:\n          trust_stores: {{ca: [root.crt]}}\n          trusted_identities: [\"*\"]\n          signature_verification: {{level: {level}}}\n          crls: [{crls}]\n"
        )
    };
    let text = [
        "default: deny\npolicies:\n".to_owned(),
        policy("strict", "s-*", "strict", ""),
        policy("lenient", "p-*", "permissive", ""),
        policy("cached", "c-*", "strict", "int.crl"),
    ]
    .concat();
    std::fs::write(dir.path().join("crl.yaml"), text).unwrap();
    let notarium =
        Notarium::start_with(&[host, &crls.host], &[("NOTARIUM_POLICIES_DIR", dir.path().to_str().unwrap())]);
    Setup { registry, notarium, notation, crls, refused, _dir: dir }
}

#[test]
fn a_fetched_crl_denies_a_revoked_leaf_allows_a_good_one_and_is_kept_until_its_next_update() {
    let setup = start();
    let first = setup.signed("s-good", "good");
    let (signed, out) = setup.notation.sign(&first, "good", &["--signature-format", "cose"]);
    assert!(signed, "{out}");
    let answer = setup.verify(&first);
    assert_eq!(answer["allowed"], true, "{answer}");
    // Two signatures (JWS and COSE) name one distribution point: one request.
    assert_eq!(setup.crls.requests("int.crl"), 1);
    // Another image by the same leaf: its CRL comes from the cache.
    let second = setup.signed("s-good-again", "good");
    let answer = setup.verify(&second);
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(setup.crls.requests("int.crl"), 1, "the second verify is served from the cache");

    let revoked = setup.signed("s-revoked", "revoked");
    let answer = setup.verify(&revoked);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains("CN=revoked is revoked by its issuer's CRL"), "{answer}");
    assert_eq!(setup.crls.requests("int.crl"), 1);
}

#[test]
fn a_host_the_egress_rules_refuse_is_never_contacted_and_the_status_is_unknown() {
    let setup = start();
    let strict = setup.signed("s-unlisted", "unlisted");
    let answer = setup.verify(&strict);
    assert_eq!(answer["allowed"], false, "{answer}");
    let why = reasons(&answer);
    assert!(why.contains("revocation status unknown"), "{answer}");
    assert!(why.contains(&format!("{} is not contacted", setup.refused.host)), "{answer}");

    let permissive = setup.signed("p-unlisted", "unlisted");
    let answer = setup.verify(&permissive);
    assert_eq!(answer["allowed"], true, "{answer}");
    let logged = answer["logged"].to_string();
    assert!(logged.contains("revocation status unknown") && logged.contains(&setup.refused.host), "{answer}");
    // A cached CRL file from the issuer serves offline: allowed, nothing fetched.
    let cached = setup.signed("c-unlisted", "unlisted");
    let answer = setup.verify(&cached);
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(setup.refused.connections(), 0, "the refused host was contacted");
}

#[test]
fn an_oversized_a_forged_or_a_stale_crl_leaves_the_status_unknown() {
    let setup = start();
    let oversized = setup.signed("s-oversized", "oversized");
    let answer = setup.verify(&oversized);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains(&format!("{}'s answer is larger than the limit", setup.crls.host)), "{answer}");

    let forged = setup.signed("s-forged", "forged");
    let answer = setup.verify(&forged);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains("no current CRL from its issuer"), "{answer}");
    assert_eq!(setup.crls.requests("forged.crl"), 1);

    let stale = setup.signed("s-stale", "stale");
    for attempt in 1..=2 {
        let answer = setup.verify(&stale);
        assert_eq!(answer["allowed"], false, "{answer}");
        assert!(reasons(&answer).contains("no current CRL from its issuer"), "{answer}");
        // A CRL past its nextUpdate is never kept: each verify fetches it again.
        assert_eq!(setup.crls.requests("stale.crl"), attempt);
    }
}

#[test]
fn simultaneous_verifies_wanting_one_crl_share_one_fetch() {
    let setup = start();
    // Eight images by one leaf: eight decisions (not shared by the decision cache), one distribution point.
    let images: Vec<String> = (0..8).map(|i| setup.signed(&format!("s-many-{i}"), "good")).collect();
    // The answer is held long enough that all eight verifies want the CRL before any has it.
    setup.crls.hold(Duration::from_secs(2));
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let verifies: Vec<_> = images.iter().map(|image| scope.spawn(|| setup.verify(image))).collect();
        verifies.into_iter().map(|verify| verify.join().unwrap()).collect()
    });
    for answer in &answers {
        assert_eq!(answer["allowed"], true, "{answer}");
    }
    assert_eq!(setup.crls.requests("int.crl"), 1, "eight simultaneous verifies, one request");
}

//! The register as C2SP tlog-tiles, fetched over HTTP from a real notarium and checked by independent
//! implementations: `signed_note` verifies the checkpoint, `tlog_tiles` reads the hash tiles through its
//! `TileHashReader` (which checks every tile against the checkpoint's root), recomputes the root and builds
//! inclusion and consistency proofs from them; entry bundles hash to the level-0 tiles. Also: the caching
//! headers, 404 beyond the tree and for non-canonical paths, entry bundles for auditors only.

use std::cell::RefCell;

use notarium::formats::checkpoint::{Checkpoint, ed25519_verifier_key, parse_note};
use notarium::formats::tile::encode_index;
use tlog_tiles::{Hash, Tile, TileHashReader, TileReader};

use crate::support::{EXAMPLE_KEYS, Notarium, client};

const SECRET: &str = "tiles-events-secret-7c2d";
const ORIGIN: &str = "notarium.local/log";

fn start() -> Notarium {
    let config = format!("[events]\nregistry_secret_env = \"NOTARIUM_TEST_EVENTS_SECRET\"\n{EXAMPLE_KEYS}");
    Notarium::start_with_config(&config, &[], &[("NOTARIUM_TEST_EVENTS_SECRET", SECRET)])
}

/// Appends `count` registry-push entries in one notification.
fn push_events(server: &Notarium, first_id: usize, count: usize) {
    let events: Vec<_> = (first_id..first_id + count)
        .map(|i| {
            serde_json::json!({
                "id": format!("event-{i}"),
                "action": "push",
                "target": {"repository": "tiles/app", "digest": format!("sha256:{i:064x}"), "tag": format!("v{i}")},
            })
        })
        .collect();
    let response = client()
        .post(format!("{}/v1/events/registry", server.url))
        .header("Content-Type", "application/vnd.docker.distribution.events.v1+json")
        .header("Authorization", format!("Bearer {SECRET}"))
        .body(serde_json::json!({ "events": events }).to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());
}

/// The current checkpoint, verified by the `signed_note` crate with the example log key.
fn verified_checkpoint(server: &Notarium) -> Checkpoint {
    let pem = std::fs::read_to_string(format!("{}/keys.example/dev-log.pem", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let key = <ed25519_dalek::SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem).unwrap();
    let vkey = ed25519_verifier_key(ORIGIN, &key.verifying_key().to_bytes());
    let verifiers = signed_note::VerifierList::new(vec![Box::new(signed_note::StandardVerifier::new(&vkey).unwrap())]);
    let (status, note) = server.get_text("/v1/log/checkpoint");
    assert_eq!(status, 200);
    let opened = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
    let (verified, _) = opened.verify(&verifiers).unwrap();
    assert_eq!(verified.len(), 1);
    let parsed = tlog_tiles::Checkpoint::from_bytes(opened.text()).unwrap();
    let ours = Checkpoint::parse_body(&parse_note(&note).unwrap().0).unwrap();
    assert_eq!((parsed.size(), parsed.hash().0), (ours.size, ours.root_hash));
    ours
}

/// Reads tiles for `tlog_tiles` from the server: its Go sumdb tile of height 8, level L, is our level-L
/// tile, at `/v1/log/tile/<L>/<N>[.p/<W>]`.
struct HttpTiles<'a> {
    server: &'a Notarium,
    fetched: RefCell<Vec<(String, String)>>,
}

impl TileReader for HttpTiles<'_> {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        let mut data = Vec::new();
        for tile in tiles {
            let path = tile.path();
            let ours = path.strip_prefix("tile/8/").unwrap();
            let response = client().get(format!("{}/v1/log/tile/{ours}", self.server.url)).send().unwrap();
            assert_eq!(response.status(), 200, "{ours}");
            assert_eq!(response.headers()["content-type"], "application/octet-stream");
            let cache = response.headers()["cache-control"].to_str().unwrap().to_owned();
            self.fetched.borrow_mut().push((ours.to_owned(), cache));
            data.push(response.bytes().unwrap().to_vec());
        }
        Ok(data)
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

#[test]
fn tiles_served_over_http_give_tlog_tiles_the_checkpoints_root_and_proofs() {
    let server = start();
    push_events(&server, 0, 300);
    let first = verified_checkpoint(&server);
    push_events(&server, 300, 400);
    let checkpoint = verified_checkpoint(&server);
    assert!(checkpoint.size > 700 && first.size > 256, "{} {}", first.size, checkpoint.size);

    let tiles = HttpTiles { server: &server, fetched: RefCell::default() };
    let reader = TileHashReader::new(checkpoint.size, Hash(checkpoint.root_hash), &tiles);
    assert_eq!(tlog_tiles::tree_hash(checkpoint.size, &reader).unwrap().0, checkpoint.root_hash);
    for index in [0, 255, 256, first.size - 1, checkpoint.size - 1] {
        let proof = tlog_tiles::prove_record(checkpoint.size, index, &reader).unwrap();
        let leaf = tlog_tiles::record_hash(&server_entry(&server, index));
        tlog_tiles::check_record(&proof, checkpoint.size, Hash(checkpoint.root_hash), index, leaf).unwrap();
    }
    let consistency = tlog_tiles::prove_tree(checkpoint.size, first.size, &reader).unwrap();
    tlog_tiles::check_tree(
        &consistency,
        checkpoint.size,
        Hash(checkpoint.root_hash),
        first.size,
        Hash(first.root_hash),
    )
    .unwrap();
    // Full tiles and partial ones alike are immutable and public.
    let fetched = tiles.fetched.borrow();
    assert!(fetched.iter().any(|(path, _)| path == "0/000") && fetched.iter().any(|(path, _)| path.contains(".p/")));
    assert!(fetched.iter().any(|(path, _)| path.starts_with("1/")), "no level-1 tile was read: {fetched:?}");
    assert!(fetched.iter().all(|(_, cache)| cache == "public, max-age=31536000, immutable"), "{fetched:?}");
}

/// Entry `index`'s bytes, the last of the partial entry bundle that ends with it.
fn server_entry(server: &Notarium, index: u64) -> Vec<u8> {
    let width = index % 256 + 1;
    let partial = if width == 256 { String::new() } else { format!(".p/{width}") };
    let path = format!("/v1/log/tile/entries/{}{partial}", encode_index(index / 256));
    let (status, bundle) = get(server, &path, None);
    assert_eq!(status, 200, "{path}");
    split_bundle(&bundle).pop().unwrap()
}

fn get(server: &Notarium, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let mut request = client().get(format!("{}{path}", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    (response.status().as_u16(), response.bytes().unwrap().to_vec())
}

fn split_bundle(bundle: &[u8]) -> Vec<Vec<u8>> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        entries.push(rest[2..2 + length].to_vec());
        rest = &rest[2 + length..];
    }
    entries
}

#[test]
fn entry_bundles_hash_to_the_level_zero_tiles_and_only_auditors_read_them() {
    let server = start();
    push_events(&server, 0, 300);
    let size = verified_checkpoint(&server).size;
    let tile0 = get(&server, "/v1/log/tile/0/000", None);
    assert_eq!(tile0.0, 200);
    assert_eq!(tile0.1.len(), 256 * 32);
    let bundle = get(&server, "/v1/log/tile/entries/000", None);
    let entries = split_bundle(&bundle.1);
    assert_eq!(entries.len(), 256);
    let hashes: Vec<u8> = entries.iter().flat_map(|e| tlog_tiles::record_hash(e).0).collect();
    assert_eq!(hashes, tile0.1);
    // A partial bundle is the prefix of the next one; its entries are the register's entries.
    let width = size - 256;
    let partial = split_bundle(&get(&server, &format!("/v1/log/tile/entries/001.p/{width}"), None).1);
    assert_eq!(partial.len() as u64, width);
    let entry: serde_json::Value = serde_json::from_slice(&partial[0]).unwrap();
    assert_eq!(entry["kind"], "registry-push", "{entry}");

    // Once a token exists, entry bundles need an auditor; hash tiles stay public.
    let (auditor, _) = server.create_token(&["--role", "auditor"]);
    let (signer, _) = server.create_token(&["--role", "signer", "--keys", "dev-ecdsa", "--repos", "x/*"]);
    // The server notices the first token within its open-mode check interval.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while get(&server, "/v1/log/tile/entries/000", None).0 != 401 {
        assert!(std::time::Instant::now() < deadline, "entry bundles stayed open after a token was made");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(get(&server, "/v1/log/tile/entries/000", Some(&signer)).0, 403);
    let response =
        client().get(format!("{}/v1/log/tile/entries/000", server.url)).bearer_auth(&auditor).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "private, max-age=31536000, immutable");
    assert_eq!(response.bytes().unwrap().to_vec(), bundle.1);
    assert_eq!(get(&server, "/v1/log/tile/0/000", None), tile0);
}

#[test]
fn tiles_beyond_the_tree_and_non_canonical_paths_are_404() {
    let server = start();
    push_events(&server, 0, 20);
    let size = verified_checkpoint(&server).size;
    assert!(size < 256);
    let partial = format!("/v1/log/tile/0/000.p/{size}");
    let (status, bytes) = get(&server, &partial, None);
    assert_eq!(status, 200);
    assert_eq!(bytes.len() as u64, size * 32);
    let first_leaf = bytes[..32].to_vec();
    assert_eq!(tlog_tiles::record_hash(&server_entry(&server, 0)).0.to_vec(), first_leaf);
    for path in [
        "/v1/log/tile/0/000".to_owned(),
        format!("/v1/log/tile/0/000.p/{}", size + 1),
        "/v1/log/tile/1/000.p/1".into(),
        "/v1/log/tile/0/001.p/1".into(),
        "/v1/log/tile/0/00".into(),
        "/v1/log/tile/0/x000/000.p/1".into(),
        "/v1/log/tile/0/000.p/0".into(),
        "/v1/log/tile/64/000".into(),
        "/v1/log/tile/00/000.p/1".into(),
        "/v1/log/tile/entries/000".into(),
        "/v1/log/tile/0/x018/x446/x744/x073/x709/x551/615".into(),
    ] {
        let (status, body) = get(&server, &path, None);
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
    }
}

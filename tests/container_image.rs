//! notarium's own container image: `scripts/build-image.sh` (from the test's debug binary, so no release build
//! is paid here) gives the same bytes twice, holds only its files with a non-root user, starts as that user
//! on its own root file system, and `scripts/release-image.sh` pushes it with skopeo and has a running
//! notarium sign it and attest its SLSA provenance, which cosign 2.5 and `notarium verify --policy` accept.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use support::{Cosign, Notarium, Registry};

const BUILD_TYPE: &str = "https://notarium.dev/buildtypes/build-image/v1";

fn script(name: &str) -> PathBuf {
    Path::new(support::ROOT).join("scripts").join(name)
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `scripts/build-image.sh OUT --binary BINARY`; the manifest digest it prints.
fn build(out: &Path, binary: &Path) -> String {
    build_with(out, binary, &[]).0
}

/// `scripts/build-image.sh OUT --binary BINARY` with `env`; the manifest digest it prints, and its stderr.
fn build_with(out: &Path, binary: &Path, env: &[(&str, &str)]) -> (String, String) {
    let built = Command::new("bash")
        .arg(script("build-image.sh"))
        .arg(out)
        .arg("--binary")
        .arg(binary)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(built.status.success(), "build-image.sh: {}", text(&built));
    (String::from_utf8(built.stdout).unwrap().trim().to_owned(), String::from_utf8(built.stderr).unwrap())
}

/// One layout from the test binary, shared by the tests of this area (built once per run, in the target dir).
fn shared_layout() -> &'static (PathBuf, String) {
    static LAYOUT: OnceLock<(PathBuf, String)> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("container-image");
        let _ = std::fs::remove_dir_all(&out);
        let digest = build(&out, Path::new(env!("CARGO_BIN_EXE_notarium")));
        (out, digest)
    })
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap()
}

fn json_blob(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&blob(layout, digest)).unwrap()
}

/// `(mode, owner, path)` of every entry of the image's one layer, as GNU tar lists them.
fn layer_entries(layout: &Path, manifest: &Value) -> Vec<(String, String, String)> {
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let path = layout.join("blobs/sha256").join(layers[0]["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let listed = Command::new("tar").arg("--numeric-owner").arg("-tvzf").arg(&path).output().unwrap();
    assert!(listed.status.success(), "{}", text(&listed));
    String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[0].to_owned(), fields[1].to_owned(), fields[fields.len() - 1].to_owned())
        })
        .collect()
}

/// The content of `path` in the image's layer.
fn layer_file(layout: &Path, manifest: &Value, path: &str) -> String {
    let layer = layout
        .join("blobs/sha256")
        .join(manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let out = Command::new("tar").arg("-xzOf").arg(layer).arg(path).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The tag the layout's index names its image by.
fn layout_tag(layout: &Path) -> String {
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().to_owned()
}

#[test]
fn the_image_built_twice_has_one_digest_and_holds_only_its_files_for_a_non_root_user() {
    let (first, digest) = shared_layout();
    let second = tempfile::tempdir().unwrap();
    let again = build(&second.path().join("layout"), Path::new(env!("CARGO_BIN_EXE_notarium")));
    assert_eq!(&again, digest, "two builds from one commit and binary gave two digests");
    for file in ["index.json", "oci-layout", "provenance.json"] {
        let (a, b) = (std::fs::read(first.join(file)).unwrap(), std::fs::read(second.path().join("layout").join(file)));
        assert_eq!(a, b.unwrap(), "{file} differs between two builds");
    }

    let index: Value = serde_json::from_slice(&std::fs::read(first.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());
    assert_eq!(support::sha256_digest(&blob(first, digest)), *digest);
    let manifest = json_blob(first, digest);
    let config = json_blob(first, manifest["config"]["digest"].as_str().unwrap());
    let run = &config["config"];
    assert_eq!(run["User"], "65532:65532", "{config}");
    assert_eq!(run["Entrypoint"], serde_json::json!(["/usr/local/bin/notarium"]));
    assert_eq!(run["Cmd"], serde_json::json!(["serve"]));
    assert_eq!(run["WorkingDir"], "/var/lib/notarium");
    let env: Vec<&str> = run["Env"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert!(env.contains(&"NOTARIUM_DATA_DIR=/var/lib/notarium"), "{env:?}");
    assert!(env.contains(&"NOTARIUM_CONFIG=/etc/notarium/notarium.toml"), "{env:?}");
    assert!(config.get("history").is_none(), "history carries build times: {config}");

    let entries = layer_entries(first, &manifest);
    let mut paths: Vec<&str> = entries.iter().map(|(_, _, path)| path.as_str()).collect();
    paths.sort_unstable();
    let libraries = ["libc.so.6", "libgcc_s.so.1", "libm.so.6"].map(|l| format!("lib/x86_64-linux-gnu/{l}"));
    let mut expected = vec![
        "etc/",
        "etc/group",
        "etc/passwd",
        "etc/ssl/",
        "etc/ssl/certs/",
        "etc/ssl/certs/ca-certificates.crt",
        "lib/",
        "lib/x86_64-linux-gnu/",
        "lib64/",
        "lib64/ld-linux-x86-64.so.2",
        "usr/",
        "usr/local/",
        "usr/local/bin/",
        "usr/local/bin/notarium",
        "var/",
        "var/lib/",
        "var/lib/notarium/",
    ];
    expected.extend(libraries.iter().map(String::as_str));
    expected.sort_unstable();
    assert_eq!(paths, expected, "the layer holds other files than the binary, its libraries and the base files");
    for (mode, owner, path) in &entries {
        if path == "var/lib/notarium/" {
            assert_eq!((mode.as_str(), owner.as_str()), ("drwx------", "65532/65532"), "the data folder");
        } else {
            assert_eq!(owner, "0/0", "{path}");
            assert_ne!(&mode[8..9], "w", "{path} is writable by others: {mode}");
        }
    }
    let passwd = layer_file(first, &manifest, "etc/passwd");
    assert!(passwd.contains("notarium:x:65532:65532:"), "{passwd}");
}

#[test]
fn the_provenance_describes_the_build_from_the_commit_the_binary_and_the_base_files() {
    let (layout, _) = shared_layout();
    let provenance: Value = serde_json::from_slice(&std::fs::read(layout.join("provenance.json")).unwrap()).unwrap();
    let definition = &provenance["buildDefinition"];
    assert_eq!(definition["buildType"], BUILD_TYPE);
    let commit = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(support::ROOT).output().unwrap();
    let commit = String::from_utf8(commit.stdout).unwrap().trim().to_owned();
    assert_eq!(definition["externalParameters"]["source"]["commit"], commit.as_str());
    assert_eq!(definition["externalParameters"]["script"], "scripts/build-image.sh");
    assert_eq!(definition["externalParameters"]["binaryProfile"], "debug");
    let dependencies = definition["resolvedDependencies"].as_array().unwrap();
    let sha256_of = |uri: &str| {
        let found = dependencies.iter().find(|d| d["uri"] == uri).unwrap_or_else(|| panic!("{uri}: {provenance}"));
        format!("sha256:{}", found["digest"]["sha256"].as_str().unwrap())
    };
    let source = &dependencies[0];
    assert!(source["uri"].as_str().unwrap().starts_with("git+"), "{source}");
    assert!(source["uri"].as_str().unwrap().ends_with(&format!("@{commit}")), "{source}");
    assert_eq!(source["digest"]["gitCommit"], commit.as_str());
    let file_digest = |path: &Path| support::sha256_digest(&std::fs::read(path).unwrap());
    assert_eq!(sha256_of("file:Cargo.lock"), file_digest(&Path::new(support::ROOT).join("Cargo.lock")));
    assert_eq!(sha256_of("file:usr/local/bin/notarium"), file_digest(Path::new(env!("CARGO_BIN_EXE_notarium"))));
    let bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
    assert_eq!(sha256_of("file:etc/ssl/certs/ca-certificates.crt"), file_digest(bundle));
    assert_eq!(
        sha256_of("file:lib/x86_64-linux-gnu/libc.so.6"),
        file_digest(Path::new("/lib/x86_64-linux-gnu/libc.so.6"))
    );
    assert!(provenance["runDetails"]["builder"]["id"].as_str().unwrap().starts_with("https://"));
    let metadata = &provenance["runDetails"]["metadata"];
    assert_eq!(metadata["startedOn"], metadata["finishedOn"], "{metadata}");
}

#[test]
fn a_token_in_the_remote_url_stays_out_of_the_provenance_and_the_builder_changes_no_image_byte() {
    let (_, digest) = shared_layout();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("layout");
    let remote = "https://ci-bot:ghp_notarium_test_secret@git.example/acme/notarium.git";
    let env = [
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", "remote.origin.url"),
        ("GIT_CONFIG_VALUE_0", remote),
        ("BUILDER_ID", "https://ci.example/runner \"7\""),
    ];
    let (again, stderr) = build_with(&out, Path::new(env!("CARGO_BIN_EXE_notarium")), &env);
    assert_eq!(&again, digest, "where and by whom it was built changed the image");
    let written = std::fs::read_to_string(out.join("provenance.json")).unwrap();
    for secret in ["ghp_notarium_test_secret", "ci-bot"] {
        assert!(!written.contains(secret) && !stderr.contains(secret), "{secret} leaked: {written}{stderr}");
    }
    let provenance: Value = serde_json::from_str(&written).expect("the provenance is JSON whatever the builder id");
    let source = provenance["buildDefinition"]["resolvedDependencies"][0]["uri"].as_str().unwrap();
    assert!(source.starts_with("git+https://git.example/acme/notarium.git@"), "{source}");
    assert_eq!(provenance["runDetails"]["builder"]["id"], "https://ci.example/runner \"7\"");
}

/// A policy requiring a signature by `public_key` and a provenance attestation from build-image.sh.
fn image_policy(dir: &Path, host: &str, public_key: &Path) -> PathBuf {
    let pem = std::fs::read_to_string(public_key).unwrap();
    let pem: String = pem.lines().map(|line| format!("          {line}\n")).collect();
    let policy = format!(
        "policies:\n  - name: notarium-image\n    images: [\"{host}/notarium/*\"]\n    authorities:\n      - public_key: |\n{pem}\
         \x20   attestations:\n      - predicate_type: https://slsa.dev/provenance/v1\n        conditions:\n\
         \x20         - predicate.buildDefinition.buildType == \"{BUILD_TYPE}\"\n\
         \x20         - predicate.buildDefinition.externalParameters.script == \"scripts/build-image.sh\"\n"
    );
    let path = dir.join("image-policy.yaml");
    std::fs::write(&path, policy).unwrap();
    path
}

fn verify_with_policy(image: &str, policy: &Path, host: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["verify", image, "--policy"])
        .arg(policy)
        .args(["--insecure-registry", host, "--output", "json"])
        .env_remove("NOTARIUM_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn notarium_signs_and_attests_its_own_image_and_cosign_and_verify_policy_accept_it() {
    let (layout, digest) = shared_layout();
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let reference = format!("{}/notarium/server:v1", registry.host);
    let released = Command::new("bash")
        .arg(script("release-image.sh"))
        .arg(layout)
        .args([&reference, "--key", "dev-ecdsa", "--server", &notarium.url, "--insecure-registry"])
        .env("SKOPEO", support::tool("skopeo"))
        .env("NOTARIUM", env!("CARGO_BIN_EXE_notarium"))
        .env_remove("NOTARIUM_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(released.status.success(), "release-image.sh: {}", text(&released));
    let image = format!("{}/notarium/server@{digest}", registry.host);
    assert_eq!(String::from_utf8_lossy(&released.stdout).lines().last(), Some(image.as_str()));
    assert_eq!(support::sha256_digest(&registry.manifest("notarium/server", "v1").unwrap()), *digest);

    let dir = tempfile::tempdir().unwrap();
    let key = notarium.public_key_file("dev-ecdsa", dir.path());
    let cosign = Cosign::new();
    let (ok, said) = cosign.verify(&image, &key);
    assert!(ok, "cosign verify refused notarium's image: {said}");
    let key_arg = key.to_str().unwrap();
    let out = cosign.run(&[
        "verify-attestation",
        "--key",
        key_arg,
        "--type",
        "slsaprovenance1",
        "--insecure-ignore-tlog",
        "--allow-http-registry",
        "--offline",
        &image,
    ]);
    assert!(out.status.success(), "cosign verify-attestation refused the provenance: {}", text(&out));

    let policy = image_policy(dir.path(), &registry.host, &key);
    let out = verify_with_policy(&image, &policy, &registry.host);
    assert!(out.status.success(), "notarium verify --policy refused its own image: {}", text(&out));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["allowed"], true, "{decision}");
    assert_eq!(
        decision["attestations"].as_array().map(Vec::len),
        Some(1),
        "the provenance was not checked: {decision}"
    );

    // The same build from another binary: pushed next to it, never signed, so the policy refuses it.
    let other_binary = dir.path().join("debug/notarium");
    std::fs::create_dir_all(other_binary.parent().unwrap()).unwrap();
    let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_notarium")).unwrap();
    bytes.extend_from_slice(b"another build");
    std::fs::write(&other_binary, bytes).unwrap();
    std::fs::set_permissions(&other_binary, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let other_layout = dir.path().join("other");
    let other_digest = build(&other_layout, &other_binary);
    assert_ne!(&other_digest, digest);
    let source = format!("oci:{}:{}", other_layout.display(), layout_tag(&other_layout));
    let destination = format!("docker://{}/notarium/server:other", registry.host);
    let policy_file = dir.path().join("accept.json");
    std::fs::write(&policy_file, br#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    let pushed = Command::new(support::tool("skopeo"))
        .arg("--policy")
        .arg(&policy_file)
        .args(["copy", "--dest-tls-verify=false", &source, &destination])
        .output()
        .unwrap();
    assert!(pushed.status.success(), "{}", text(&pushed));
    let other_image = format!("{}/notarium/server@{other_digest}", registry.host);
    let out = verify_with_policy(&other_image, &policy, &registry.host);
    assert_eq!(out.status.code(), Some(1), "an unsigned image was not refused: {}", text(&out));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["allowed"], false, "{decision}");
    assert!(decision["reasons"].to_string().contains("no valid signature"), "{decision}");
    let (ok, said) = cosign.verify(&other_image, &key);
    assert!(!ok, "cosign accepted an image notarium never signed: {said}");
}

/// The image's process as its config says (User, WorkingDir, Env, Entrypoint), on its unpacked root file
/// system, with `args` in place of its `Cmd` when given.
fn image_process(rootfs: &Path, config: &Value, args: Option<&[&str]>) -> Command {
    let run = &config["config"];
    let (uid, gid) = run["User"].as_str().unwrap().split_once(':').unwrap();
    let strings = |v: &Value| v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let command = args.map_or_else(|| strings(&run["Cmd"]), |a| a.iter().map(|s| s.to_string()).collect());
    let mut process = Command::new("/usr/bin/unshare");
    process
        .arg(format!("--root={}", rootfs.display()))
        .arg(format!("--wd={}", run["WorkingDir"].as_str().unwrap()))
        .args(["--setuid", uid, "--setgid", gid, "--"])
        .args(strings(&run["Entrypoint"]))
        .args(command)
        .env_clear()
        .envs(strings(&run["Env"]).iter().map(|e| e.split_once('=').unwrap()))
        .stdin(Stdio::null());
    process
}

/// What the operator mounts at /etc/notarium: a configuration listening on all addresses at `port` with TLS,
/// its keys and TLS files, owned by the image's user. Returns the certificate (its own trust anchor).
fn mount_configuration(rootfs: &Path, port: u16) -> PathBuf {
    let etc = rootfs.join("etc/notarium");
    std::fs::create_dir_all(&etc).unwrap();
    for key in ["dev-ecdsa", "dev-log"] {
        std::fs::copy(
            Path::new(support::ROOT).join("keys.example").join(format!("{key}.pem")),
            etc.join(format!("{key}.pem")),
        )
        .unwrap();
    }
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=notarium-image-test", "-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(etc.join("tls.key"))
        .arg("-out")
        .arg(etc.join("tls.crt"))
        .output()
        .unwrap();
    assert!(made.status.success(), "openssl: {}", text(&made));
    let keys = ["dev-ecdsa", "dev-log"]
        .map(|key| format!("[[keys]]\nid = \"{key}\"\nbackend = \"file\"\npath = \"{key}.pem\"\n\n"))
        .concat();
    let config = format!(
        "[server]\nlisten = \"0.0.0.0:{port}\"\ntls_cert = \"tls.crt\"\ntls_key = \"tls.key\"\n\n{keys}[log]\nkey = \"dev-log\"\n"
    );
    std::fs::write(etc.join("notarium.toml"), config).unwrap();
    for entry in std::fs::read_dir(&etc).unwrap() {
        let path = entry.unwrap().path();
        std::os::unix::fs::chown(&path, Some(65532), Some(65532)).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    etc.join("tls.crt")
}

#[test]
fn the_image_starts_as_its_non_root_user_with_tls_and_a_token_as_the_readme_says() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        // unshare --root and --setuid need root; so would a container runtime (none is installed here).
        eprintln!("skipped: running the image's root file system needs root");
        return;
    }
    let (layout, digest) = shared_layout();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let image = format!("{}:{}", layout.display(), layout_tag(layout));
    let out = Command::new("umoci").args(["unpack", "--image", &image]).arg(&bundle).output().unwrap();
    assert!(out.status.success(), "umoci unpack: {}", text(&out));
    let rootfs = bundle.join("rootfs");
    let config = json_blob(layout, json_blob(layout, digest)["config"]["digest"].as_str().unwrap());
    let port = support::free_port();
    let certificate = mount_configuration(&rootfs, port);

    // The first token, made before the first start (a non-loopback listener needs TLS and authentication).
    let args = ["token", "create", "--role", "verifier", "--expires", "1d", "--output", "json"];
    let made = image_process(&rootfs, &config, Some(&args)).output().unwrap();
    assert!(made.status.success(), "token create in the image: {}", text(&made));
    let token: Value = serde_json::from_slice(&made.stdout).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    let mut child = image_process(&rootfs, &config, None).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut log = String::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
            if line.starts_with("notarium listening on https://0.0.0.0:") {
                let _ = tx.send(Ok(()));
            }
        }
        let _ = tx.send(Err(log));
    });
    let started = rx.recv_timeout(std::time::Duration::from_secs(30));
    let answers = started.as_ref().is_ok_and(Result::is_ok).then(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let anchor = reqwest::Certificate::from_pem(&std::fs::read(&certificate).unwrap()).unwrap();
        let client = reqwest::blocking::Client::builder().tls_certs_only([anchor]).build().unwrap();
        let url = format!("https://127.0.0.1:{port}");
        let ready = client.get(format!("{url}/readyz")).send().unwrap();
        let anonymous = client.get(format!("{url}/v1/referrers?image=x")).send().unwrap().status().as_u16();
        let with_token = client.get(format!("{url}/v1/referrers")).bearer_auth(&token).send().unwrap();
        (ready.status().as_u16(), ready.text().unwrap(), anonymous, with_token.status().as_u16())
    });
    let _ = child.kill();
    let _ = child.wait();
    let (ready, body, anonymous, with_token) =
        answers.unwrap_or_else(|| panic!("the image's notarium did not start: {started:?}"));
    assert_eq!(ready, 200, "{body}");
    assert_eq!(anonymous, 401, "authentication is not on");
    assert_eq!(with_token, 400, "the token made in the image is not accepted (400: the image parameter is missing)");
    let database = std::fs::metadata(rootfs.join("var/lib/notarium/notarium.db")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&database), 65532, "the database is not the user's");
}

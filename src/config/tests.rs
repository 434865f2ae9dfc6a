//! The configuration's loading, defaults, overrides and refusals.

use super::*;
use crate::keys::SecretRef;

#[test]
fn embedded_defaults_match_the_design() {
    let c = Config::load(None, &HashMap::new()).unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:8080");
    assert_eq!(c.database_url(), "sqlite://data/notarium.db");
    assert_eq!(c.keys.len(), 3);
    assert!(c.uses_example_keys());
    assert_eq!(c.log_key().as_deref(), Some("dev-log"));
    assert_eq!(c.example_log_key_file(), Some(Path::new("keys.example/dev-log.pem")));
    assert_eq!(c.server.max_body_bytes, 1024 * 1024);
    assert_eq!(c.registries.insecure, ["127.0.0.1:5000", "localhost:5000"]);
}

#[test]
fn a_config_text_parses_as_the_file_would_without_paths_or_variables() {
    let c = Config::parse_toml("[server]\nlisten = \"0.0.0.0:9000\"\n").unwrap();
    assert_eq!(c.server.listen, "0.0.0.0:9000");
    assert!(matches!(Config::parse_toml("[server"), Err(ConfigError::Parse { .. })));
}

#[test]
fn relative_paths_written_in_a_file_mean_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    let text = "[server]\ntls_cert = \"c.pem\"\ntls_key = \"/abs/k.pem\"\n[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"k.pem\"\n";
    std::fs::write(&path, text).unwrap();
    let env = HashMap::from([("NOTARIUM_POLICIES_DIR".to_owned(), "from-env".to_owned())]);
    let c = Config::load(Some(&path), &env).unwrap();
    assert!(matches!(&c.keys[0], KeyConfig::File { path, .. } if *path == dir.path().join("k.pem")));
    assert_eq!(c.server.tls_cert.as_deref(), Some(dir.path().join("c.pem").as_path()));
    assert_eq!(c.server.tls_key.as_deref(), Some(Path::new("/abs/k.pem")));
    assert_eq!((c.server.data_dir, c.policies.dir), (PathBuf::from("data"), PathBuf::from("from-env")));
    let defaults = Config::load(None, &HashMap::new()).unwrap();
    assert!(matches!(&defaults.keys[0], KeyConfig::File { path, .. } if path.starts_with("keys.example")));
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"0.0.0.0:1\"\n[registries]\ninsecure = [\"a:1\"]\n[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"k.pem\"\n",
    )
    .unwrap();
    let env = HashMap::from([
        ("NOTARIUM_LISTEN".to_owned(), "127.0.0.1:9".to_owned()),
        ("NOTARIUM_INSECURE_REGISTRIES".to_owned(), "b:2, c:3".to_owned()),
        ("NOTARIUM_DATA_DIR".to_owned(), "/tmp/x".to_owned()),
    ]);
    let c = Config::load(Some(&path), &env).unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:9");
    assert_eq!(c.registries.insecure, ["b:2", "c:3"]);
    assert_eq!(c.database_url(), "sqlite:///tmp/x/notarium.db");
    assert_eq!(c.keys[0].id(), "k");
    assert!(!c.uses_example_keys());
}

#[test]
fn registry_hosts_are_canonical_and_a_malformed_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    let config =
        |registries: &str| format!("{registries}\n[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"k.pem\"\n");
    std::fs::write(
        &path,
        config(
            "[registries]\ninsecure = [\"LocalHost:5000\"]\nreferrers_off = [\"Reg.Example:443\"]\n\
             [registries.auth.\"Index.Docker.IO\"]\nusername = \"u\"\npassword_env = \"P\"",
        ),
    )
    .unwrap();
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(c.registries.insecure, ["localhost:5000"]);
    assert_eq!(c.registries.referrers_off, ["reg.example"]);
    assert_eq!(c.registries.auth.keys().collect::<Vec<_>>(), ["docker.io"]);
    let env =
        HashMap::from([("NOTARIUM_INSECURE_REGISTRIES".to_owned(), "LOCALHOST:5001, reg.example:443".to_owned())]);
    assert_eq!(Config::load(Some(&path), &env).unwrap().registries.insecure, ["localhost:5001", "reg.example"]);

    let env = HashMap::from([("NOTARIUM_INSECURE_REGISTRIES".to_owned(), "localhost:05000".to_owned())]);
    let err = Config::load(Some(&path), &env).unwrap_err().to_string();
    assert!(err.contains("NOTARIUM_INSECURE_REGISTRIES") && err.contains("localhost:05000"), "{err}");
    std::fs::write(&path, config("[registries]\nreferrers_off = [\"reg.example.\"]")).unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("referrers_off") && err.contains("reg.example."), "{err}");
    let twice = "[registries.auth.\"docker.io\"]\nusername = \"a\"\npassword_env = \"P\"\n\
                 [registries.auth.\"index.docker.io\"]\nusername = \"b\"\npassword_env = \"P\"";
    std::fs::write(&path, config(twice)).unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("docker.io twice"), "{err}");
}

#[test]
fn egress_globs_are_canonical_and_the_blob_stores_and_caps_have_defaults() {
    let c = Config::load(None, &HashMap::new()).unwrap();
    assert!(c.registries.allow.is_empty() && c.registries.deny.is_empty());
    assert_eq!(c.registries.blob_stores["ghcr.io"], ["pkg-containers.githubusercontent.com"]);
    assert_eq!((c.registries.max_error_body_bytes, c.registries.max_token_body_bytes), (65536, 65536));
    assert_eq!(c.registries.max_manifest_bytes, 4 * 1024 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    std::fs::write(
        &path,
        "[registries]\nallow = [\"*.Corp.Example\", \"Reg.Example:443\"]\ndeny = [\"Index.Docker.IO\"]\n\
         [registries.blob_stores]\n\"Harbor.Corp.Example\" = [\"S3.Corp.Example:*\"]\n\
         [registries.auth.\"harbor.corp.example\"]\nusername = \"u\"\npassword_env = \"P\"\nrealms = [\"SSO.Corp.Example\"]\n",
    )
    .unwrap();
    let r = Config::load(Some(&path), &HashMap::new()).unwrap().registries;
    assert_eq!(r.allow, ["*.corp.example", "reg.example"]);
    assert_eq!(r.deny, ["docker.io"]);
    assert_eq!(r.blob_stores.len(), 1, "a configured table replaces the built-in one");
    assert_eq!(r.blob_stores["harbor.corp.example"], ["s3.corp.example:*"]);
    assert_eq!(r.auth["harbor.corp.example"].realms, ["sso.corp.example"]);
    std::fs::write(&path, "[registries]\nallow = [\"reg/*\"]\n").unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("[registries] allow") && err.contains("reg/*"), "{err}");
    std::fs::write(&path, "[registries]\nmax_token_body_bytes = 0\n").unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("max_token_body_bytes must be at least 1"), "{err}");
}

#[test]
fn pkcs11_and_vault_keys_parse_with_their_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    std::fs::write(
        &path,
        r#"
[[keys]]
id = "hsm"
backend = "pkcs11"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "notarium"
key_label = "p256"
pin_env = "PIN"

[[keys]]
id = "vault"
backend = "vault"
address = "http://127.0.0.1:8200"
key = "cosign"
auth = "approle"
role_id = "r"
secret_id_file = "/run/secret"
"#,
    )
    .unwrap();
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    let KeyConfig::Pkcs11(hsm) = &c.keys[0] else { panic!("not pkcs11") };
    assert_eq!((hsm.max_sessions, hsm.refresh_secs), (4, 30));
    let KeyConfig::Vault(vault) = &c.keys[1] else { panic!("not vault") };
    assert_eq!(vault.mount, "transit");
    assert_eq!(vault.auth, VaultAuthMethod::Approle);
    std::fs::write(
        &path,
        "[[keys]]\nid = \"v\"\nbackend = \"vault\"\naddress = \"x\"\nkey = \"k\"\ntoken = \"s3cret\"\n",
    )
    .unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("unknown field `token`"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn the_example_file_parses_and_names_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("notarium.example.toml");
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(c.server.request_timeout_secs, 60);
    assert_eq!((c.server.header_timeout_secs, c.server.idle_timeout_secs, c.server.max_connections), (10, 120, 1024));
    assert_eq!(c.auth.rate_per_minute, 600);
    assert_eq!((c.auth.public_rate_per_minute, c.auth.failed_auth_per_minute), (600, 60));
    assert!(!c.auth.required && !c.auth.open && c.auth.oidc.is_empty());
    assert_eq!(c.policies.evidence, EvidenceLimits::default());
    let text = std::fs::read_to_string(&path).unwrap();
    for (registry, stores) in RegistriesConfig::default().blob_stores {
        let line = format!("# \"{registry}\" = {}", serde_json::to_string(&stores).unwrap().replace(",", ", "));
        assert!(text.contains(&line), "the example does not show the built-in blob stores: {line}");
    }
    let defaults = RegistriesConfig::default();
    assert_eq!(c.registries.max_manifest_bytes, defaults.max_manifest_bytes);
    assert_eq!(c.registries.max_error_body_bytes, defaults.max_error_body_bytes);
    assert_eq!(c.registries.max_token_body_bytes, defaults.max_token_body_bytes);
}

#[test]
fn an_oidc_issuer_with_rules_parses_and_tls_needs_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    std::fs::write(
        &path,
        r#"
[[auth.oidc]]
issuer = "https://token.actions.githubusercontent.com"
audience = "notarium"
[[auth.oidc.rules]]
claims = { repository = "acme/*" }
role = "signer"
repos = ["r.example/acme/*"]
keys = ["prod"]
"#,
    )
    .unwrap();
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(c.auth.oidc[0].algorithms, ["RS256", "ES256"]);
    assert_eq!(c.auth.oidc[0].rules[0].role, Role::Signer);
    std::fs::write(&path, "[server]\ntls_cert = \"c.pem\"\n").unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("tls_key"), "{err}");
}

#[test]
fn evidence_limits_default_and_can_be_raised_but_not_zeroed() {
    let c = Config::load(None, &HashMap::new()).unwrap();
    assert_eq!(c.policies.evidence, EvidenceLimits::default());
    assert_eq!(c.policies.evidence.max_layers, 64);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    std::fs::write(&path, "[policies.evidence]\nmax_layers = 200\nmax_bundle_bytes = 4194304\n").unwrap();
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    assert_eq!((c.policies.evidence.max_layers, c.policies.evidence.max_bundle_bytes), (200, 4 * 1024 * 1024));
    assert_eq!(c.policies.evidence.max_referrers, 64);
    std::fs::write(&path, "[policies.evidence]\nmax_envelope_signatures = 0\n").unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("max_envelope_signatures must be at least 1"), "{err}");
    std::fs::write(&path, "[policies.evidence]\nmax_layer = 1\n").unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("max_layer"), "{err}");
}

#[test]
fn the_log_key_is_one_of_the_keys_and_never_defaults_to_an_image_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    let keys = "[[keys]]\nid = \"dev-ed25519\"\nbackend = \"file\"\npath = \"keys.example/dev-ed25519.pem\"\n";
    std::fs::write(&path, keys).unwrap();
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(c.log_key(), None, "an image key is not taken for the log");
    std::fs::write(&path, format!("{keys}[log]\nkey = \"hsm-log@2\"\n")).unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("[log] key \"hsm-log@2\" is not one of the [[keys]]"), "{err}");
    std::fs::write(&path, format!("{keys}[log]\nkey = \"dev-ed25519@1\"\n")).unwrap();
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    let example = dir.path().join("keys.example/dev-ed25519.pem");
    assert_eq!(c.example_log_key_file(), Some(example.as_path()), "resolved against the file's folder");
}

#[test]
fn connection_limits_are_positive_and_the_idle_timeout_outlasts_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    let load = |server: &str| {
        std::fs::write(&path, format!("[server]\n{server}\n")).unwrap();
        Config::load(Some(&path), &HashMap::new()).map_err(|e| e.to_string())
    };
    let c = load("header_timeout_secs = 2\nidle_timeout_secs = 61\nmax_connections = 3").unwrap();
    assert_eq!((c.server.header_timeout_secs, c.server.idle_timeout_secs, c.server.max_connections), (2, 61, 3));
    assert!(load("max_connections = 0").unwrap_err().contains("max_connections must be at least 1"));
    assert!(load("header_timeout_secs = 0").unwrap_err().contains("header_timeout_secs must be at least 1"));
    let e = load("request_timeout_secs = 300").unwrap_err();
    assert!(e.contains("idle_timeout_secs (120) must exceed request_timeout_secs (300)"), "{e}");
}

#[test]
fn typos_and_duplicate_keys_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    std::fs::write(&path, "[server]\nlisten_addr = \"x\"\n").unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("listen_addr"), "{err}");
    std::fs::write(
        &path,
        "[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"a\"\n[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"b\"\n",
    )
    .unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("twice"), "{err}");
}

#[test]
fn every_secret_is_one_secret_ref_and_naming_both_sources_is_refused_naming_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    let pkcs11 =
        "[[keys]]\nid = \"hsm\"\nbackend = \"pkcs11\"\nmodule = \"m.so\"\ntoken_label = \"t\"\nkey_label = \"k\"\n";
    let vault = "[[keys]]\nid = \"v\"\nbackend = \"vault\"\naddress = \"x\"\nkey = \"k\"\n";
    let registry = "[registries.auth.\"reg.example\"]\nusername = \"ci\"\n";
    let cases = [
        (
            format!("{pkcs11}pin_env = \"PIN\"\npin_file = \"pin\"\n"),
            "[[keys]] \"hsm\": set pin_env or pin_file, not both",
        ),
        (
            format!("{vault}token_env = \"T\"\ntoken_file = \"t\"\n"),
            "[[keys]] \"v\": set token_env or token_file, not both",
        ),
        (
            format!("{vault}secret_id_env = \"S\"\nsecret_id_file = \"s\"\n"),
            "[[keys]] \"v\": set secret_id_env or secret_id_file, not both",
        ),
        (
            format!("{registry}password_env = \"P\"\npassword_file = \"p\"\n"),
            "[registries.auth] \"reg.example\": set password_env or password_file, not both",
        ),
        (
            "[events]\nregistry_secret_env = \"S\"\nregistry_secret_file = \"s\"\n".into(),
            "[events]: set registry_secret_env or registry_secret_file, not both",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&path, &text).unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.ends_with(expected), "{err}");
    }

    std::fs::write(
        &path,
        format!(
            "{pkcs11}pin_file = \"pin\"\n[events]\nregistry_secret_env = \"S\"\n{registry}password_file = \"/p\"\n"
        ),
    )
    .unwrap();
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    let KeyConfig::Pkcs11(hsm) = &c.keys[0] else { panic!("not pkcs11") };
    assert_eq!(hsm.pin().unwrap(), Some(SecretRef::File(dir.path().join("pin"))));
    assert_eq!(c.events.registry_secret().unwrap(), Some(SecretRef::Env("S".into())));
    assert_eq!(c.registries.auth["reg.example"].password("reg.example").unwrap(), Some(SecretRef::File("/p".into())));
    assert_eq!(Config::load(None, &HashMap::new()).unwrap().events.registry_secret().unwrap(), None);
}

#[test]
fn sigstore_trusted_roots_default_to_the_shipped_root_and_are_checked() {
    let c = Config::load(None, &HashMap::new()).unwrap();
    assert_eq!(c.sigstore.names(), [PUBLIC_GOOD]);
    let shipped = c.sigstore.load().unwrap();
    assert_eq!(shipped.names(), [PUBLIC_GOOD]);
    assert!(!shipped.roots[0].root.certificate_authorities.is_empty() && !shipped.roots[0].root.tlogs.is_empty());
    let two = "[sigstore]\ntrusted_roots = [{name = \"public-good\"}, {name = \"private\", path = \"root.json\"}]\n";
    assert_eq!(Config::parse_toml(two).unwrap().sigstore.names(), ["public-good", "private"]);
    for (bad, why) in [
        ("[{name = \"private\"}]", "\"private\" needs a path"),
        ("[{name = \"a\", path = \"x\"}, {name = \"a\", path = \"y\"}]", "\"a\" is configured twice"),
        ("[{name = \" \", path = \"x\"}]", "every root needs a name"),
    ] {
        let e = Config::parse_toml(&format!("[sigstore]\ntrusted_roots = {bad}\n")).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn a_trusted_root_path_means_the_config_folder_and_a_bad_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    std::fs::write(&path, "[sigstore]\ntrusted_roots = [{name = \"private\", path = \"root.json\"}]\n").unwrap();
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(c.sigstore.trusted_roots[0].path.as_deref(), Some(dir.path().join("root.json").as_path()));
    let missing = c.sigstore.load().unwrap_err().to_string();
    assert!(missing.contains(&dir.path().join("root.json").display().to_string()), "{missing}");
    std::fs::write(dir.path().join("root.json"), "{not json").unwrap();
    let e = c.sigstore.load().unwrap_err().to_string();
    assert!(e.contains("root.json") && e.contains("trusted root \"private\""), "{e}");
}

#[test]
fn certificate_chains_and_the_ca_parse_with_their_defaults_and_paths_mean_the_files_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    let text = "[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"k.pem\"\ncertificate_chain = \"k.chain.pem\"\n\
                [[keys]]\nid = \"ca\"\nbackend = \"file\"\npath = \"ca.pem\"\n\
                [ca]\nkey = \"ca\"\ncertificate = \"ca.crt\"\n";
    std::fs::write(&path, text).unwrap();
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(c.keys[0].certificate_chain(), Some(dir.path().join("k.chain.pem").as_path()));
    assert_eq!(c.keys[1].certificate_chain(), None);
    let ca = c.ca.unwrap();
    assert_eq!(ca.certificate.as_deref(), Some(dir.path().join("ca.crt").as_path()));
    assert_eq!(ca.validity().unwrap(), std::time::Duration::from_secs(90 * 86_400));
    assert_eq!(ca.subject_for("k", 2), "CN=k, O=notarium");
}

#[test]
fn a_ca_names_a_configured_key_that_is_not_the_checkpoint_key_and_a_sane_validity() {
    let keys = "[[keys]]\nid = \"ca\"\nbackend = \"file\"\npath = \"ca.pem\"\n[[keys]]\nid = \"log\"\nbackend = \"file\"\npath = \"l.pem\"\n[log]\nkey = \"log\"\n";
    let refused = |ca: &str| Config::parse_toml(&format!("{keys}[ca]\n{ca}")).unwrap_err().to_string();
    assert!(refused("key = \"nope\"").contains("[ca] key \"nope\" is not one of the [[keys]]"));
    assert!(refused("key = \"log\"").contains("checkpoint key"));
    for validity in ["90", "90m", "0d", "59s", "d"] {
        assert!(refused(&format!("key = \"ca\"\nvalidity = \"{validity}\"")).contains("[ca] validity"), "{validity}");
    }
    assert!(refused("key = \"ca\"\nsubject = \"just text\"").contains("[ca] subject"));
    assert!(Config::parse_toml(&format!("{keys}[ca]\nkey = \"ca\"\nvalidity = \"12h\"")).is_ok());
}

#[test]
fn registry_formats_are_keyed_by_canonical_host_and_an_unknown_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notarium.toml");
    let config =
        |registries: &str| format!("{registries}\n[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"k.pem\"\n");
    let formats =
        "[registries.formats]\n\"Harbor.Example:443\" = [\"cosign\", \"notation\"]\n[sign]\nnotation_expiry_days = 365";
    std::fs::write(&path, config(formats)).unwrap();
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(c.registries.formats["harbor.example"], [SignFormat::Cosign, SignFormat::Notation]);
    assert_eq!(c.sign.notation_expiry_days, Some(365));
    std::fs::write(&path, config("[registries.formats]\n\"r.example\" = [\"cosign\", \"gpg\"]")).unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("gpg"), "{err}");
}

#[test]
fn an_oversized_config_file_is_refused_unread_naming_it() {
    let (_dir, path) = crate::local_file::sparse_file("notarium.toml", MAX_CONFIG_BYTES + 1);
    let e = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(e.contains(&path.display().to_string()) && e.contains("larger than the limit"), "{e}");
}

#[test]
fn an_oversized_trusted_root_file_is_refused_unread_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    std::fs::write(&path, "[sigstore]\ntrusted_roots = [{name = \"private\", path = \"root.json\"}]\n").unwrap();
    let c = Config::load(Some(&path), &HashMap::new()).unwrap();
    let root = dir.path().join("root.json");
    let limit = crate::pki::trusted_root::MAX_DOCUMENT_BYTES as u64;
    std::fs::File::create(&root).unwrap().set_len(limit + 1).unwrap();
    let e = c.sigstore.load().unwrap_err().to_string();
    assert!(e.contains(&root.display().to_string()) && e.contains("larger than the limit"), "{e}");
}

#[test]
fn a_tsa_table_takes_a_url_roots_beside_the_file_and_a_bounded_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    let keys = "[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"k.pem\"\n";
    std::fs::write(&path, format!("{keys}[tsa]\nurl = \"https://tsa.example/stamp\"\nroots = [\"tsa.pem\"]\n"))
        .unwrap();
    let tsa = Config::load(Some(&path), &HashMap::new()).unwrap().tsa.unwrap();
    assert_eq!(tsa.roots, [dir.path().join("tsa.pem")]);
    assert_eq!((tsa.url().unwrap().as_str(), tsa.timeout_secs), ("https://tsa.example/stamp", 10));
    let refusal = |table: &str| Config::parse_toml(&format!("{keys}[tsa]\n{table}")).unwrap_err().to_string();
    assert!(refusal("url = \"https://u:p@tsa.example\"\nroots = [\"r\"]").contains("[tsa] url"), "credentials");
    assert!(refusal("url = \"tsa.example\"\nroots = [\"r\"]").contains("not a URL"));
    assert!(refusal("url = \"http://t\"\nroots = [\"r\"]\ntimeout_secs = 61").contains("[tsa] timeout_secs 61"));
    assert!(refusal("url = \"http://t\"\nroots = [\"r\"]\nretries = 3").contains("unknown field"));
}

#[test]
fn an_oversized_tsa_roots_file_is_refused_unread_naming_it() {
    let (dir, roots) = crate::local_file::sparse_file("tsa.pem", crate::local_file::MIB + 1);
    let path = dir.path().join("n.toml");
    let keys = "[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"k.pem\"\n";
    std::fs::write(&path, format!("{keys}[tsa]\nurl = \"https://tsa.example/stamp\"\nroots = [\"tsa.pem\"]\n"))
        .unwrap();
    let e = Config::load(Some(&path), &HashMap::new()).unwrap().tsa.unwrap().load().unwrap_err().to_string();
    assert!(e.contains(&roots.display().to_string()) && e.contains("larger than the limit"), "{e}");
}

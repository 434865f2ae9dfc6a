//! notarium sends at most a fixed number of requests at a time to one registry (`oci::distribution`): many more
//! verifies in flight than that bound, each reading its own image's evidence, all finish and are all allowed —
//! the waiting ones get their turn, none is dropped or refused. (How much memory that saves is measured by
//! `scripts/bench-memory.sh`, never asserted here.)

use crate::support;

use serde_json::json;
use support::{Notarium, Registry, push_many};

#[test]
fn many_more_verifies_than_the_registry_turns_all_get_their_answer() {
    const IMAGES: usize = 120;
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let host = &registry.host;
    let policy = format!(
        "policies:\n  - name: turns\n    images: [\"{host}/turns/**\"]\n    authorities:\n      - key: dev-ecdsa\n"
    );
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/turns.yaml"), policy).unwrap();
    let config = dir.path().join("notarium.toml");
    std::fs::write(&config, "[policies]\ncache_secs = 0\n").unwrap();
    let notarium = Notarium::start_with(
        &[host],
        &[
            ("NOTARIUM_CONFIG", config.to_str().unwrap()),
            ("NOTARIUM_POLICIES_DIR", dir.path().join("policies").to_str().unwrap()),
        ],
    );
    let images: Vec<String> =
        push_many(&registry, "turns/app", IMAGES).iter().map(|d| format!("{host}/turns/app@{d}")).collect();
    for image in &images {
        let (status, answer) = notarium.sign(image, "dev-ecdsa");
        assert_eq!(status, 201, "{answer}");
    }

    // Every verify reads three sources at once: 360 registry requests wanted together, far over the bound.
    let answers: Vec<_> = std::thread::scope(|scope| {
        let verifies: Vec<_> = (images.iter())
            .map(|image| {
                let notarium = &notarium;
                scope.spawn(move || notarium.post("/v1/verify", json!({"image": image}).to_string()))
            })
            .collect();
        verifies.into_iter().map(|v| v.join().unwrap()).collect()
    });
    for (status, _, answer) in answers {
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["allowed"], true, "{answer}");
        assert_eq!(answer["cached"], false, "{answer}");
    }
}

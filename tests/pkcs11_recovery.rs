//! In-process: the pkcs11 backend recovers from a lost login without a restart. SoftHSM2 reads
//! `SOFTHSM2_CONF` at C_Initialize, once per process, so the test re-runs itself alone in a child process
//! of this test binary, with the token's configuration and PIN in that child's environment.

use crate::support;

use std::process::Command;
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use notarium::keys::{Pkcs11Settings, Pkcs11Signer, SecretRef, Signer};
use support::{SOFTHSM_MODULE, SoftHsm};

/// Set in the child process only: the token's PIN, read by the signer.
const PIN_ENV: &str = "NOTARIUM_TEST_RECOVERY_PIN";

#[test]
fn a_lost_login_is_recovered_on_the_next_sign() {
    if std::env::var_os(PIN_ENV).is_some() {
        return sign_lose_the_login_and_sign_again();
    }
    let hsm = SoftHsm::new("recovery");
    hsm.generate("EC:prime256v1", "p256", "01");
    let this_test =
        format!("{}::a_lost_login_is_recovered_on_the_next_sign", module_path!().split_once("::").unwrap().1);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([this_test.as_str(), "--exact", "--test-threads=1", "--nocapture"])
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env(PIN_ENV, &hsm.pin)
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the test in its own process failed:\n{report}");
    assert!(report.contains("1 passed"), "the child ran no test:\n{report}");
}

/// The test proper, in a process whose environment names the token.
fn sign_lose_the_login_and_sign_again() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let signer = Pkcs11Signer::new(
        "recovery",
        Pkcs11Settings {
            module: SOFTHSM_MODULE.into(),
            token_label: "recovery".into(),
            key_label: Some("p256".into()),
            key_id: None,
            pin: SecretRef::Env(PIN_ENV.into()),
            max_sessions: 2,
            refresh: Duration::from_secs(60),
        },
    );
    let public_key = runtime.block_on(signer.versions()).unwrap().remove(0).public_key;
    let first = runtime.block_on(signer.sign(None, b"before")).unwrap();
    public_key.verify(b"before", &first.bytes).unwrap();

    // Another part of the process logs the application out of the token: every session of notarium's
    // pool now fails with CKR_USER_NOT_LOGGED_IN.
    let ctx = Pkcs11::new(SOFTHSM_MODULE).unwrap();
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == "recovery")
        .unwrap();
    ctx.open_ro_session(slot).unwrap().logout().unwrap();

    let second = runtime.block_on(signer.sign(None, b"after")).expect("sign recovers after the logout");
    public_key.verify(b"after", &second.bytes).unwrap();
    assert_eq!(second.version, 1);
}

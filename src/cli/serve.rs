//! `notarium serve`: wire configuration, store, keys and registry client together and serve the API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::CliError;

use super::tls::{CertificateFiles, TlsListener};
use crate::api::{AppState, Limits, record_all_held_denials, record_held_denials, router};
use crate::auth::Authenticator;
use crate::config::Config;
use crate::oci::{DistributionRegistry, EgressRules, RegistryLimits};
use crate::service::{
    Layouts, RegisterSettings, Service, ServiceError, WitnessOutcome, attach_configured_chains, check_policy_keys,
};

pub(super) async fn serve(config_path: Option<PathBuf>, insecure: bool) -> Result<(), CliError> {
    init_tracing();
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = Config::load(config_path.as_deref(), &env).map_err(|e| CliError::Usage(e.to_string()))?;
    if config.uses_example_keys() {
        tracing::warn!(
            "USING THE EXAMPLE KEYS FROM keys.example/: THEY ARE PUBLIC AND NOT FOR PRODUCTION; configure [[keys]] with \
             the pkcs11 or vault backend"
        );
    }
    if let Some(file) = config.example_log_key_file() {
        tracing::warn!(
            file = %file.display(),
            "THE REGISTER'S CHECKPOINTS ARE SIGNED WITH A PUBLIC EXAMPLE KEY: anyone can sign a checkpoint that \
             verifies, so they prove nothing; set [log] key to an Ed25519 key of your own (pkcs11 or vault backend)"
        );
    }
    super::secret_files::warn_about_readable_secret_files(&config);
    let keys = super::keyring::load_keys(&config)?;
    attach_configured_chains(&keys, &config.keys, time::OffsetDateTime::now_utc())
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let store = crate::store::open(&config.database_url()).await.map_err(|e| CliError::Unavailable(e.to_string()))?;
    let (egress, limits) =
        (EgressRules::from_config(&config.registries), RegistryLimits::from_config(&config.registries));
    let credentials =
        crate::oci::credentials::configured(&config.registries, &[]).map_err(|e| CliError::Usage(e.to_string()))?;
    let registry = Arc::new(DistributionRegistry::new(egress.clone(), limits, credentials));
    let register = RegisterSettings { origin: config.log.origin(), key: config.log_key() };
    let service = Service::new(keys, registry, store, register)
        .with_layouts(Layouts {
            referrers_off: config.registries.referrers_off.clone(),
            formats: config.registries.formats.clone(),
            notation_expiry: config.sign.notation_expiry_days.map(|days| time::Duration::days(i64::from(days))),
            max_batch: Some(config.sign.max_batch()),
            max_batch_manifests: Some(config.sign.max_batch_manifests()),
        })
        .with_evidence_limits(config.policies.evidence.clone())
        .with_trusted_roots(load_trusted_roots(&config)?)
        .with_crl_fetching(egress)
        .with_sign_on_push(config.sign_on_push.clone(), config.sign_queue.clone())
        .with_verdicts(config.verdicts.clone());
    let policies = load_policies(&config)?;
    policies.check_trusted_roots(&service.trusted_root_names()).map_err(|e| CliError::Usage(e.to_string()))?;
    check_policy_keys(service.keys(), &policies).await.map_err(|e| CliError::Usage(e.to_string()))?;
    if let Some(conflict) = service.verdict_key_conflict(&policies).await {
        return Err(CliError::Usage(conflict));
    }
    service.set_policies(policies);
    service.cache_decisions(Duration::from_secs(config.policies.cache_secs));
    let service = match &config.tsa {
        Some(tsa) => {
            let tsa = tsa.load().map_err(|e| CliError::Usage(e.to_string()))?;
            tracing::info!(url = %tsa.url, roots = tsa.authorities.len(), "Notary Project signatures are timestamped");
            service.with_tsa(tsa, EgressRules::from_config(&config.registries))
        }
        None => service,
    };
    let witnesses = config.log.witnesses().map_err(|e| CliError::Usage(e.to_string()))?;
    let service =
        service.with_witnesses(witnesses, EgressRules::from_config(&config.registries), config.log.witness_timeout());
    let service = match &config.ca {
        Some(ca) => service.with_ca(ca.clone(), config.keys.clone()),
        None => service,
    };
    let service = Arc::new(service);
    if service.has_ca() {
        issue_key_certificates(&service).await?;
        tokio::spawn(renew_key_certificates(service.clone()));
    }
    tokio::spawn(follow_register(service.clone()));
    if service.has_witnesses() {
        tokio::spawn(send_checkpoints_to_witnesses(service.clone(), config.log.witness_interval()));
    }
    let grace = Duration::from_secs(config.database.pending_grace_secs);
    reconcile(&service, grace).await;
    tokio::spawn(reconcile_periodically(service.clone(), grace));
    start_sign_queue(&service, !config.sign_on_push.is_empty()).await;
    record_key_versions(&service).await;
    record_policies(&service).await;
    tokio::spawn(report_key_backends(service.clone()));
    tokio::spawn(reload_policies(service.clone(), config.policies.clone()));
    let registry_events_secret = registry_events_secret(&config)?;
    let auth = Arc::new(
        Authenticator::new(&config.auth, service.store().clone()).map_err(|e| CliError::Usage(e.to_string()))?,
    );
    let auth_required = auth.is_required().await.map_err(|e| CliError::Unavailable(e.to_string()))?;
    crate::auth::check_open_mode(&config, auth_required).map_err(CliError::Usage)?;
    let draining = Arc::new(AtomicBool::new(false));
    let state = AppState { service, registry_events_secret, draining: draining.clone(), auth };
    tokio::spawn(record_held_denials(state.clone()));
    let held_denials = state.clone();
    let limits = Limits {
        max_body_bytes: config.server.max_body_bytes,
        request_timeout: Duration::from_secs(config.server.request_timeout_secs),
    };
    let app = router(state, limits);
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .map_err(|e| CliError::Unavailable(format!("cannot listen on {}: {e}", config.server.listen)))?;
    let address = listener.local_addr().map_err(|e| CliError::Unavailable(e.to_string()))?;
    let tls = certificate_files(&config);
    check_exposure(address, tls.is_some(), auth_required, insecure)?;
    let (stopping, stopped) = tokio::sync::oneshot::channel();
    let drain = Duration::from_secs(config.server.shutdown_drain_secs);
    let shutdown = drain_then_stop(draining, drain, stopping);
    let connections = connection_limits(&config);
    let server = match tls {
        Some(files) => {
            let listener = TlsListener::start(listener, files)?;
            eprintln!("notarium listening on https://{address}");
            tokio::spawn(super::listener::serve(listener, app, connections, shutdown))
        }
        None => {
            eprintln!("notarium listening on http://{address}");
            tokio::spawn(super::listener::serve(listener, app, connections, shutdown))
        }
    };
    let bound = Duration::from_secs(config.server.shutdown_timeout_secs);
    tokio::select! {
        served = server => served.map_err(|e| CliError::Unavailable(e.to_string()))?,
        () = async { let _ = stopped.await; tokio::time::sleep(bound).await } => {
            tracing::warn!(seconds = bound.as_secs(), "in-flight requests did not finish in time; exiting");
        }
    }
    record_all_held_denials(&held_denials).await;
    tracing::info!("stopped");
    Ok(())
}

fn connection_limits(config: &Config) -> super::listener::ConnectionLimits {
    super::listener::ConnectionLimits {
        header_timeout: Duration::from_secs(config.server.header_timeout_secs),
        idle_timeout: Duration::from_secs(config.server.idle_timeout_secs),
        max_connections: config.server.max_connections,
    }
}

fn certificate_files(config: &Config) -> Option<CertificateFiles> {
    let (cert, key) = (config.server.tls_cert.clone()?, config.server.tls_key.clone()?);
    Some(CertificateFiles { cert, key })
}

/// An open or plain-HTTP API is for loopback: anywhere else it needs TLS and authentication, unless the
/// operator says `--insecure` (e.g. behind a TLS-terminating proxy that authenticates).
fn check_exposure(address: SocketAddr, tls: bool, auth_required: bool, insecure: bool) -> Result<(), CliError> {
    if !auth_required {
        tracing::warn!(
            %address,
            "THE API IS OPEN: no API token exists and no OIDC issuer is configured, so anyone who can reach this \
             address may sign; `notarium token create` makes the first token and turns authentication on"
        );
    }
    if address.ip().is_loopback() || (tls && auth_required) {
        return Ok(());
    }
    if insecure {
        tracing::warn!(%address, tls, auth_required, "--insecure: serving a non-loopback address without TLS and authentication");
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "refusing to listen on {address} without {}: configure [server] tls_cert and tls_key and create an API token \
         (or an [[auth.oidc]] issuer), or pass --insecure",
        if tls {
            "authentication"
        } else if auth_required {
            "TLS"
        } else {
            "TLS and authentication"
        }
    )))
}

/// On SIGTERM/SIGINT: `/readyz` turns unready at once, requests are still served for `drain`, then the
/// listener closes and in-flight requests finish (bounded by the caller). `stopping` fires when the
/// listener closes.
async fn drain_then_stop(draining: Arc<AtomicBool>, drain: Duration, stopping: tokio::sync::oneshot::Sender<()>) {
    shutdown_signal().await;
    draining.store(true, Ordering::SeqCst);
    tracing::info!(seconds = drain.as_secs(), "shutting down: unready, draining");
    tokio::time::sleep(drain).await;
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    let _ = stopping.send(());
}

/// Logs the policy versions now in force that the register does not hold yet.
async fn record_policies(service: &Service) {
    match service.record_policies().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(policies = n, "new policy versions recorded in the register"),
        Err(e) => tracing::warn!(error = %e, "policy versions not recorded in the register"),
    }
}

/// The trusted roots of `[sigstore]`; an unreadable or invalid one stops start-up, naming its file.
fn load_trusted_roots(config: &Config) -> Result<crate::config::TrustedRoots, CliError> {
    let roots = config.sigstore.load().map_err(|e| CliError::Usage(e.to_string()))?;
    tracing::info!(roots = ?roots.names(), "Sigstore trusted roots loaded");
    Ok(roots)
}

/// The policies in `[policies] dir`; a broken file stops start-up, naming file, line and field.
fn load_policies(config: &Config) -> Result<crate::policy::PolicySet, CliError> {
    let set = crate::policy::PolicySet::load_dir(&config.policies.dir).map_err(|e| CliError::Usage(e.to_string()))?;
    tracing::info!(dir = %config.policies.dir.display(), policies = set.policies.len(), "trust policies loaded");
    Ok(set)
}

/// Checks the policy folder every `reload_secs` and swaps in a changed set; a broken change is logged with
/// its file, line and field, and the policies in force stay until a good version arrives.
async fn reload_policies(service: Arc<Service>, config: crate::config::PoliciesConfig) {
    let mut seen = crate::policy::fingerprint(&config.dir).ok();
    loop {
        tokio::time::sleep(Duration::from_secs(config.reload_secs.max(1))).await;
        let now = match crate::policy::fingerprint(&config.dir) {
            Ok(now) if Some(&now) == seen.as_ref() => continue,
            Ok(now) => now,
            Err(e) => {
                tracing::warn!(error = %e, "policy folder unreadable; the policies in force stay");
                continue;
            }
        };
        let loaded = match crate::policy::PolicySet::load_dir(&config.dir) {
            Ok(set) => match set.check_trusted_roots(&service.trusted_root_names()) {
                Ok(()) => check_policy_keys(service.keys(), &set).await.map(|()| set),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let loaded = match loaded {
            Ok(set) => match service.verdict_key_conflict(&set).await {
                Some(conflict) => Err(conflict),
                None => Ok(set),
            },
            Err(e) => Err(e.to_string()),
        };
        match loaded {
            Ok(set) => {
                tracing::info!(policies = set.policies.len(), "trust policies reloaded");
                service.set_policies(set);
                record_policies(&service).await;
            }
            Err(e) => tracing::warn!(error = %e, "policy change rejected; the policies in force stay"),
        }
        seen = Some(now);
    }
}

/// Keeps the decision cache right across replicas: every second, entries other servers appended to the
/// register forget the allowances they make stale (this server's own appends do so at once).
async fn follow_register(service: Arc<Service>) {
    let mut seen = service.register_size().await.unwrap_or(0);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        match service.follow_register(seen).await {
            Ok(size) => seen = size,
            Err(e) => tracing::warn!(error = %e, "register not readable; kept allowances expire by their TTL"),
        }
    }
}

/// Opens every key backend once at start-up so that a broken one is named in the log right away; the
/// server starts regardless, and the key answers 503 until its backend works.
async fn reconcile(service: &Service, grace: Duration) {
    match service.reconcile_pending(grace).await {
        Ok(r) if r != Default::default() => tracing::info!(?r, "reconciled interrupted signs"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "reconciliation failed; pending signs stay pending"),
    }
}

/// Settles rows left by a crash of this or another server on the same database, and rows that were
/// too young to give up at start-up.
async fn reconcile_periodically(service: Arc<Service>, grace: Duration) {
    let period = (grace / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::time::sleep(period).await;
        reconcile(&service, grace).await;
    }
}

/// Frees this database's stale claims (SQLite), starts `[sign_queue] workers` workers when any
/// `[[sign_on_push]]` rule is configured, and reports the queue's depth into the metrics every few seconds.
async fn start_sign_queue(service: &Arc<Service>, rules: bool) {
    match service.release_stale_sign_jobs().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "sign queue: claims of a stopped run released"),
        Err(e) => tracing::warn!(error = %e, "sign queue: stale claims not released; their leases will run out"),
    }
    let process = format!("{}-{}", std::process::id(), time::OffsetDateTime::now_utc().unix_timestamp_nanos());
    if rules {
        for worker in 0..service.sign_queue_settings().workers {
            let (service, owner) = (service.clone(), format!("{process}-{worker}"));
            tokio::spawn(async move { service.work_sign_queue(owner).await });
        }
    }
    let service = service.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = service.report_sign_queue().await {
                tracing::warn!(error = %e, "sign queue depth not readable");
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
}

async fn report_key_backends(service: Arc<Service>) {
    for (id, signer) in service.keys().iter() {
        match signer.versions().await {
            Ok(versions) => {
                tracing::info!(key = %id, backend = signer.backend(), versions = versions.len(), "key ready")
            }
            Err(e) => tracing::warn!(key = %id, error = %e, "key not ready"),
        }
    }
}

/// How often `[ca]` looks for certificates to renew, keys whose backend came back and rotated versions.
const CERTIFICATE_PASS: Duration = Duration::from_secs(3600);

/// One `[ca]` pass: an unusable `[ca] certificate` stops the start; a CA backend or database that does
/// not answer yet is a warning (the next pass tries again), as is a key that could not be served.
async fn issue_key_certificates(service: &Service) -> Result<(), CliError> {
    match service.renew_key_certificates(time::OffsetDateTime::now_utc()).await {
        Ok(outcome) => {
            for (key, reason) in &outcome.skipped {
                tracing::warn!(key = %key, reason = %reason, "[ca] issued no certificate");
            }
            if !outcome.issued.is_empty() {
                tracing::info!(keys = ?outcome.issued, "[ca] issued code-signing certificates");
            }
            Ok(())
        }
        Err(ServiceError::Certificate(message)) => Err(CliError::Usage(message)),
        Err(e) => {
            tracing::warn!(error = %e, "[ca] cannot issue certificates yet; trying again within the hour");
            Ok(())
        }
    }
}

async fn renew_key_certificates(service: Arc<Service>) {
    loop {
        tokio::time::sleep(CERTIFICATE_PASS).await;
        if let Err(e) = issue_key_certificates(&service).await {
            tracing::warn!(error = %e, "[ca] certificates not renewed");
        }
    }
}

/// Logs key versions the register has not seen before serving, so the register shows the keys in force
/// before their first signature; a slow backend is not waited for (its first sign records it).
async fn record_key_versions(service: &Service) {
    match tokio::time::timeout(Duration::from_secs(10), service.record_key_versions()).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(versions = n, "new key versions recorded in the register"),
        Ok(Err(e)) => tracing::warn!(error = %e, "key versions not recorded in the register yet"),
        Err(_) => tracing::warn!("key backends too slow to record key versions at start-up; recorded at first sign"),
    }
}

fn registry_events_secret(config: &Config) -> Result<Option<Arc<zeroize::Zeroizing<String>>>, CliError> {
    let Some(source) = config.events.registry_secret().map_err(|e| CliError::Usage(e.to_string()))? else {
        return Ok(None);
    };
    let secret = source.read().map_err(|e| CliError::Usage(format!("[events] registry_secret: {e}")))?;
    Ok(Some(Arc::new(secret)))
}

/// Every `interval`, sends the current checkpoint to the witnesses that have not cosigned it; each
/// witness's failure is logged with its reason (never what the witness answered beyond a status).
async fn send_checkpoints_to_witnesses(service: Arc<Service>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for outcome in service.witness_current_checkpoint().await {
            match outcome {
                WitnessOutcome::Cosigned { witness, size } => tracing::info!(%witness, size, "witness cosigned"),
                WitnessOutcome::UpToDate { .. } => {}
                WitnessOutcome::Failed { witness, reason } => {
                    tracing::warn!(%witness, %reason, "witness did not cosign");
                }
            }
        }
    }
}

pub(super) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NOTARIUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour_on_stderr());
    let _ = if std::env::var("NOTARIUM_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// ANSI colour only for a person at a terminal: stderr is one and `NO_COLOR` is not set (https://no-color.org:
/// any non-empty value turns colour off). Logs piped to a file or a collector stay plain text.
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

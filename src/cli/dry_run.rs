//! `notarium policy dry-run DIR`: sends a candidate policy folder to a running server's
//! `POST /v1/policies/dry-run` and prints, grouped by repository, the images whose decision would change.
//! Exit 1 when any image allowed now would be denied (a CI gate on policy changes), 2 when the folder or an
//! argument is wrong.
//!
//! Must not touch: choosing or deciding images (the server does).

use std::path::Path;

use serde_json::{Map, Value, json};

use super::client::send;
use super::{CliError, Output};
use crate::policy::PolicySet;

/// What `notarium policy dry-run` sends.
pub(super) struct DryRunArgs<'a> {
    pub server: &'a str,
    pub dir: &'a Path,
    pub since: &'a str,
    pub max_images: Option<usize>,
}

pub(super) async fn dry_run(args: &DryRunArgs<'_>, output: Output) -> Result<(), CliError> {
    // The same checks as `policy check`, here first, so a broken folder is named with its local path.
    PolicySet::load_dir(args.dir).map_err(|e| CliError::Usage(e.to_string()))?;
    if crate::service::period_start_ms(args.since, 0).is_none() {
        return Err(CliError::Usage(format!(
            "--since {:?}: expected RFC 3339 or a span such as 90m, 24h, 7d",
            args.since
        )));
    }
    let mut body = json!({"files": read_files(args.dir)?, "since": args.since});
    if let Some(n) = args.max_images {
        body["max_images"] = json!(n);
    }
    let url = format!("{}/v1/policies/dry-run", args.server.trim_end_matches('/'));
    let (status, text) = send(reqwest::Client::new().post(url).json(&body), args.server).await?;
    match status {
        // The folder or an argument the server would not take (a key check, a bound): a usage error.
        400 => return Err(CliError::Usage(CliError::from_problem(status, &text).to_string())),
        401.. => return Err(CliError::from_problem(status, &text)),
        _ => {}
    }
    let answer: Value = serde_json::from_str(&text)
        .map_err(|_| CliError::Unavailable(format!("notarium at {} answered no dry-run report", args.server)))?;
    output.print(&answer, || render(&answer));
    match answer["newly_denied"].as_u64() {
        Some(0) => Ok(()),
        Some(n) => {
            Err(CliError::Refused(format!("{n} image(s) allowed now would be denied by the candidate policies")))
        }
        None => Err(CliError::Unavailable("the server's answer has no newly_denied count".into())),
    }
}

/// The `*.yaml` / `*.yml` files of `dir` by file name, as the server loads a policy folder.
fn read_files(dir: &Path) -> Result<Map<String, Value>, CliError> {
    let unreadable = |e: std::io::Error| CliError::Usage(format!("cannot read {}: {e}", dir.display()));
    let mut files = Map::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if !path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            continue;
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = crate::local_file::read_text_capped(&path, crate::policy::MAX_POLICY_FILE_BYTES)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {}", path.display(), e.reason())))?;
        files.insert(name, Value::String(text));
    }
    Ok(files)
}

fn render(answer: &Value) -> String {
    let count = |k: &str| answer[k].as_u64().unwrap_or(0);
    let mut out = String::new();
    for repository in answer["repositories"].as_array().into_iter().flatten() {
        out.push_str(&format!("{}\n", repository["repository"].as_str().unwrap_or_default()));
        for (key, verb) in [("newly_denied", "would be DENIED"), ("newly_allowed", "would be allowed")] {
            for image in repository[key].as_array().into_iter().flatten() {
                let policy = image["policy"].as_str().unwrap_or("(default)");
                out.push_str(&format!("  {verb}: {} (policy {policy})\n", image["image"].as_str().unwrap_or_default()));
                for reason in image["reasons"].as_array().into_iter().flatten() {
                    out.push_str(&format!("    {}\n", reason.as_str().unwrap_or_default()));
                }
            }
        }
        for image in repository["unevaluated"].as_array().into_iter().flatten() {
            let (name, reason) =
                (image["image"].as_str().unwrap_or_default(), image["reason"].as_str().unwrap_or_default());
            out.push_str(&format!("  not evaluated: {name}: {reason}\n"));
        }
        let (allowed, denied) = (
            repository["unchanged_allowed"].as_u64().unwrap_or(0),
            repository["unchanged_denied"].as_u64().unwrap_or(0),
        );
        out.push_str(&format!("  unchanged: {allowed} allowed, {denied} denied\n"));
    }
    out.push_str(&format!(
        "{} images since {}: {} would be denied, {} would be allowed, {} unchanged, {} not evaluated",
        count("images"),
        answer["since"].as_str().unwrap_or_default(),
        count("newly_denied"),
        count("newly_allowed"),
        count("unchanged"),
        count("unevaluated"),
    ));
    if answer["truncated"] == true {
        out.push_str(&format!(
            "\ntruncated: only the first {} images were decided (pulled ones, then decided ones, newest first; --max-images)",
            count("max_images")
        ));
    }
    out
}

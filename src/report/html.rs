//! The report as one self-contained HTML page: inline CSS with print styles, no script, no external
//! resource (a Content-Security-Policy meta tag forbids loading any), every value from the register
//! escaped. Each row links to its register index in the appendix, which holds the entry as recorded.
//!
//! Must not touch: the correlations' rules (`correlate`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::ReportInput;
use super::correlate::{CHANGE_KINDS, Correlations, correlate, is_manifest, kind, text_at};

/// `text` with the five HTML-significant characters replaced, safe in element text and in a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = include_str!("report.css");

/// The report page for `input`.
pub fn render_html(input: &ReportInput) -> String {
    let found = correlate(&input.entries);
    let by_index: BTreeMap<u64, &Value> = input.entries.iter().map(|(i, e)| (*i, e)).collect();
    let mut page = Page::default();
    page.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    page.raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">");
    page.raw("<title>Register report ");
    page.text(&format!("{} – {}", input.from, input.to));
    page.raw("</title><style>");
    page.raw(STYLE);
    page.raw("</style></head><body>");
    header(&mut page, input);
    summary(&mut page, &input.entries);
    findings(&mut page, &found, &by_index);
    for ((registry, repository), entries) in by_repository(&input.entries) {
        repository_section(&mut page, &registry, &repository, &entries);
    }
    changes(&mut page, &input.entries);
    appendix(&mut page, &input.entries);
    page.raw("</body></html>\n");
    page.0
}

/// An HTML text under construction: `raw` for markup this module writes, `text` for anything else.
#[derive(Default)]
struct Page(String);

impl Page {
    fn raw(&mut self, markup: &str) {
        self.0.push_str(markup);
    }

    fn text(&mut self, text: &str) {
        self.0.push_str(&escape(text));
    }

    fn heading(&mut self, level: u8, text: &str) {
        let _ = write!(self.0, "<h{level}>{}</h{level}>", escape(text));
    }

    fn none(&mut self, what: &str) {
        let _ = write!(self.0, "<p class=\"none\">{}</p>", escape(what));
    }

    /// `none` when there is no item, else [`Self::table`] with one row per item.
    fn table_of<T>(&mut self, items: &[T], none: &str, headings: &[&str], row: impl Fn(&T) -> (Vec<u64>, Vec<Cell>)) {
        if items.is_empty() {
            return self.none(none);
        }
        let rows: Vec<_> = items.iter().map(row).collect();
        self.table(headings, &rows);
    }

    /// A table whose first column is the register index (a link to the entry in the appendix).
    fn table(&mut self, headings: &[&str], rows: &[(Vec<u64>, Vec<Cell>)]) {
        self.raw("<table><thead><tr><th class=\"index\">Index</th>");
        for h in headings {
            let _ = write!(self.0, "<th>{}</th>", escape(h));
        }
        self.raw("</tr></thead><tbody>");
        for (indices, cells) in rows {
            self.raw("<tr><td class=\"index\">");
            self.index_links(indices);
            self.raw("</td>");
            for cell in cells {
                self.cell(cell);
            }
            self.raw("</tr>");
        }
        self.raw("</tbody></table>");
    }

    fn index_links(&mut self, indices: &[u64]) {
        for (n, i) in indices.iter().enumerate() {
            let separator = if n == 0 { "" } else { ", " };
            let _ = write!(self.0, "{separator}<a href=\"#e{i}\">#{i}</a>");
        }
    }

    fn cell(&mut self, cell: &Cell) {
        match cell {
            Cell::Text(t) => {
                let _ = write!(self.0, "<td>{}</td>", escape(t));
            }
            Cell::Code(t) => {
                let _ = write!(self.0, "<td><code>{}</code></td>", escape(t));
            }
            Cell::Digest(t) => {
                let _ = write!(self.0, "<td class=\"digest\"><code>{}</code></td>", escape(t));
            }
            Cell::Reasons(t) => {
                let _ = write!(self.0, "<td class=\"reasons\">{}</td>", escape(t));
            }
            Cell::Time(t) => {
                let _ = write!(self.0, "<td class=\"time\">{}</td>", escape(t));
            }
            Cell::Flag(ok, t) => {
                let class = if *ok { "ok" } else { "bad" };
                let _ = write!(self.0, "<td class=\"{class}\">{}</td>", escape(t));
            }
            Cell::Indices(indices) => {
                self.raw("<td>");
                self.index_links(indices);
                self.raw("</td>");
            }
        }
    }
}

enum Cell {
    Text(String),
    /// Keys, versions, routes: monospace, broken anywhere.
    Code(String),
    /// A digest: monospace, on one line.
    Digest(String),
    /// An RFC 3339 time, on one line.
    Time(String),
    /// A decision's reasons: given room.
    Reasons(String),
    /// A decision: allowed (true) or denied.
    Flag(bool, String),
    Indices(Vec<u64>),
}

fn header(page: &mut Page, input: &ReportInput) {
    page.heading(1, "Register report");
    page.raw("<table class=\"meta\"><tbody>");
    for (label, value) in [
        ("Register (checkpoint origin)", input.origin.clone()),
        ("Period (to exclusive)", format!("{} – {}", input.from, input.to)),
        ("Tree size read", input.tree_size.to_string()),
        ("Entries in the period", input.entries.len().to_string()),
    ] {
        let _ = write!(page.0, "<tr><th>{}</th><td>{}</td></tr>", escape(label), escape(&value));
    }
    page.raw("</tbody></table>");
    page.raw(
        "<p class=\"note\">Every row names its register index; the appendix holds each entry as the register \
         records it, to check against the inclusion proofs of the evidence pack. Values come from the register \
         as recorded, including strings supplied by callers and registries.</p>",
    );
}

fn summary(page: &mut Page, entries: &[(u64, Value)]) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, entry) in entries {
        *counts.entry(kind(entry).to_owned()).or_default() += 1;
    }
    let denied = entries.iter().filter(|(_, e)| kind(e) == "verify" && !allowed(e)).count();
    page.heading(2, "Summary");
    page.raw("<table class=\"meta\"><thead><tr><th>Kind</th><th>Entries</th></tr></thead><tbody>");
    for (kind, count) in &counts {
        let _ = write!(page.0, "<tr><td>{}</td><td>{count}</td></tr>", escape(kind));
    }
    let _ = write!(page.0, "<tr><td>verify, denied</td><td>{denied}</td></tr>");
    page.raw("</tbody></table>");
}

fn allowed(entry: &Value) -> bool {
    entry.pointer("/details/allowed").and_then(Value::as_bool) == Some(true)
}

/// Who made the registry requests at `indices`: actor, user agent and address as the registry reported them.
fn pulled_by(by_index: &BTreeMap<u64, &Value>, indices: &[u64]) -> String {
    let mut who: Vec<String> = indices.iter().filter_map(|i| by_index.get(i)).map(|e| requester(e)).collect();
    who.dedup();
    who.join("; ")
}

fn requester(entry: &Value) -> String {
    let name = text_at(entry, &["actor", "name"]);
    let name = if name.is_empty() { "anonymous".to_owned() } else { name };
    let agent = text_at(entry, &["actor", "user_agent"]);
    let agent = if agent.is_empty() { String::new() } else { format!(" ({agent})") };
    format!("{name}{agent} from {}", text_at(entry, &["actor", "addr"]))
}

fn findings(page: &mut Page, found: &Correlations, by_index: &BTreeMap<u64, &Value>) {
    page.raw("<section class=\"findings\">");
    page.heading(2, "Findings");

    page.heading(3, "Digests pulled but never verified");
    page.table_of(
        &found.pulled_never_verified,
        "None: every image pulled in the period has a verify decision.",
        &["Repository", "Digest", "Pulled by"],
        |u| {
            let cells = vec![
                Cell::Text(u.repository.clone()),
                Cell::Digest(u.digest.clone()),
                Cell::Text(pulled_by(by_index, &u.pulls)),
            ];
            (u.pulls.clone(), cells)
        },
    );

    page.heading(3, "Pulls of digests that were denied");
    page.table_of(
        &found.denied_then_pulled,
        "None: no image denied in the period was pulled.",
        &["Repository", "Digest", "Denied at", "Order", "Pulled by"],
        |d| {
            let when = if d.denied_before { "pulled after a denial" } else { "pulled before it was denied" };
            let cells = vec![
                Cell::Text(d.repository.clone()),
                Cell::Digest(d.digest.clone()),
                Cell::Indices(d.denials.clone()),
                Cell::Flag(!d.denied_before, when.to_owned()),
                Cell::Text(pulled_by(by_index, &[d.pull])),
            ];
            (vec![d.pull], cells)
        },
    );

    page.heading(3, "Signatures by a key version after its rotation");
    page.table_of(
        &found.signed_after_rotation,
        "None: every signature used its key's current version.",
        &["Key", "Version used", "Current version", "Rotated at"],
        |l| {
            let cells = vec![
                Cell::Code(l.key.clone()),
                Cell::Code(l.key_version.to_string()),
                Cell::Code(l.current_version.to_string()),
                Cell::Indices(vec![l.rotated_at]),
            ];
            (vec![l.index], cells)
        },
    );
    page.raw("</section>");
}

type Repository = (String, String);

fn by_repository(entries: &[(u64, Value)]) -> BTreeMap<Repository, Vec<(u64, &Value)>> {
    let mut grouped: BTreeMap<Repository, Vec<(u64, &Value)>> = BTreeMap::new();
    for (index, entry) in entries {
        let Some(subject) = entry.get("subject") else { continue };
        if subject.get("repository").is_none() {
            continue;
        }
        let name = (text_at(subject, &["registry"]), text_at(subject, &["repository"]));
        grouped.entry(name).or_default().push((*index, entry));
    }
    grouped
}

fn of_kind<'a>(entries: &[(u64, &'a Value)], kinds: &[&str]) -> Vec<(u64, &'a Value)> {
    entries.iter().filter(|(_, e)| kinds.contains(&kind(e))).copied().collect()
}

fn repository_section(page: &mut Page, registry: &str, repository: &str, entries: &[(u64, &Value)]) {
    page.raw("<section class=\"repository\">");
    page.heading(2, &format!("Repository {registry}/{repository}"));
    let signs = of_kind(entries, &["sign"]);
    page.heading(3, "Images signed");
    page.table_of(
        &signs,
        "No signature in the period.",
        &["Time", "Digest", "Key (version)", "Signed by (CI identity)", "Identity signed"],
        |(i, e)| {
            let cells = vec![
                Cell::Time(text_at(e, &["time"])),
                Cell::Digest(text_at(e, &["subject", "digest"])),
                Cell::Code(key_and_version(e)),
                Cell::Text(text_at(e, &["actor", "name"])),
                Cell::Text(text_at(e, &["details", "identity"])),
            ];
            (vec![*i], cells)
        },
    );
    attestations(page, &of_kind(entries, &["attest"]));
    decisions(page, &of_kind(entries, &["verify"]));
    registry_events(page, &of_kind(entries, &["registry-push", "registry-pull", "registry-delete", "registry-mount"]));
    page.raw("</section>");
}

fn key_and_version(entry: &Value) -> String {
    format!("{} (v{})", text_at(entry, &["details", "key"]), text_at(entry, &["details", "key_version"]))
}

fn attestations(page: &mut Page, attests: &[(u64, &Value)]) {
    page.heading(3, "Attestations by predicate type");
    if attests.is_empty() {
        page.none("No attestation in the period.");
        return;
    }
    let mut by_type: BTreeMap<String, Vec<(u64, &Value)>> = BTreeMap::new();
    for (i, e) in attests {
        by_type.entry(text_at(e, &["details", "predicate_type"])).or_default().push((*i, e));
    }
    for (predicate_type, entries) in by_type {
        page.raw("<h4>Predicate type <code>");
        page.text(&predicate_type);
        let _ = write!(page.0, "</code> ({})</h4>", entries.len());
        let rows: Vec<_> = entries
            .iter()
            .map(|(i, e)| {
                let cells = vec![
                    Cell::Time(text_at(e, &["time"])),
                    Cell::Digest(text_at(e, &["subject", "digest"])),
                    Cell::Code(key_and_version(e)),
                    Cell::Text(text_at(e, &["actor", "name"])),
                ];
                (vec![*i], cells)
            })
            .collect();
        page.table(&["Time", "Digest", "Key (version)", "Attested by"], &rows);
    }
}

fn decisions(page: &mut Page, verifies: &[(u64, &Value)]) {
    page.heading(3, "Verify and admission decisions");
    page.table_of(
        verifies,
        "No decision in the period.",
        &["Time", "Digest", "Decision", "Policy (version, mode)", "Reasons", "Asked by"],
        |(i, e)| {
            let ok = allowed(e);
            let policy =
                format!("{} {}", text_at(e, &["details", "policy"]), text_at(e, &["details", "policy_version"]));
            let reasons = e.pointer("/details/reasons").and_then(Value::as_array);
            let reasons: Vec<String> = reasons.into_iter().flatten().map(|r| text_at(r, &[])).collect();
            let cells = vec![
                Cell::Time(text_at(e, &["time"])),
                Cell::Digest(text_at(e, &["subject", "digest"])),
                Cell::Flag(ok, if ok { "allowed" } else { "DENIED" }.to_owned()),
                Cell::Text(format!("{} {}", policy.trim(), text_at(e, &["details", "mode"])).trim().to_owned()),
                Cell::Reasons(reasons.join("; ")),
                Cell::Text(text_at(e, &["actor", "name"])),
            ];
            (vec![*i], cells)
        },
    );
}

fn registry_events(page: &mut Page, events: &[(u64, &Value)]) {
    page.heading(3, "Registry pulls and pushes");
    let (manifests, blobs): (Vec<_>, Vec<_>) = events.iter().partition(|(_, e)| is_manifest(e));
    if !blobs.is_empty() {
        let _ = write!(
            page.0,
            "<p class=\"note\">{} blob (layer and config) events are not listed; the appendix holds them.</p>",
            blobs.len()
        );
    }
    page.table_of(
        &manifests,
        "No manifest was pushed or pulled in the period.",
        &["Time", "Action", "Digest", "Tag", "Media type", "By"],
        |(i, e)| {
            let action = kind(e).trim_start_matches("registry-").to_owned();
            let cells = vec![
                Cell::Time(text_at(e, &["time"])),
                Cell::Text(action),
                Cell::Digest(text_at(e, &["subject", "digest"])),
                Cell::Text(text_at(e, &["details", "tag"])),
                Cell::Text(text_at(e, &["details", "media_type"])),
                Cell::Text(requester(e)),
            ];
            (vec![*i], cells)
        },
    );
}

fn changes(page: &mut Page, entries: &[(u64, Value)]) {
    page.raw("<section class=\"changes\">");
    page.heading(2, "Key, policy and token changes");
    let changed: Vec<_> = entries.iter().filter(|(_, e)| CHANGE_KINDS.contains(&kind(e))).collect();
    page.table_of(
        &changed,
        "No key, policy or token changed in the period.",
        &["Time", "Change", "Subject", "Details", "By"],
        |(i, e)| {
            let cells = vec![
                Cell::Time(text_at(e, &["time"])),
                Cell::Text(kind(e).to_owned()),
                Cell::Code(change_subject(e)),
                Cell::Text(change_details(e)),
                Cell::Text(text_at(e, &["actor", "name"])),
            ];
            (vec![*i], cells)
        },
    );
    refused(page, entries);
    page.raw("</section>");
}

fn change_subject(entry: &Value) -> String {
    let subject = |k: &str| text_at(entry, &["subject", k]);
    match kind(entry) {
        "policy-loaded" => format!("{} {}", subject("policy"), subject("version")),
        k if k.starts_with("token-") => subject("token"),
        _ => format!("{} v{}", subject("key"), subject("version")),
    }
}

fn change_details(entry: &Value) -> String {
    let detail = |k: &str| text_at(entry, &["details", k]);
    match kind(entry) {
        "policy-loaded" => format!("file {}, images {}, mode {}", detail("file"), detail("images"), detail("mode")),
        k if k.starts_with("token-") => {
            let fields = [("role", "role"), ("repos", "repos"), ("keys", "keys"), ("expires", "expires_at")];
            let present =
                fields.iter().map(|(label, k)| (label, detail(k))).filter(|(_, v)| !v.is_empty() && v != "[]");
            present.map(|(label, v)| format!("{label} {v}")).collect::<Vec<_>>().join(", ")
        }
        _ => {
            format!("{} {}, public key SHA-256 {}", detail("backend"), detail("algorithm"), detail("public_key_sha256"))
        }
    }
}

fn refused(page: &mut Page, entries: &[(u64, Value)]) {
    let denied: Vec<_> = entries.iter().filter(|(_, e)| kind(e) == "request-denied").collect();
    page.heading(3, "Requests refused");
    page.table_of(
        &denied,
        "No request was refused in the period.",
        &["Time", "By", "Route", "Reason", "Count"],
        |(i, e)| {
            let cells = vec![
                Cell::Time(text_at(e, &["time"])),
                Cell::Text(text_at(e, &["actor", "name"])),
                Cell::Code(text_at(e, &["subject", "route"])),
                Cell::Text(text_at(e, &["details", "reason"])),
                Cell::Text(text_at(e, &["details", "count"])),
            ];
            (vec![*i], cells)
        },
    );
}

fn appendix(page: &mut Page, entries: &[(u64, Value)]) {
    page.raw("<section class=\"appendix\">");
    page.heading(2, "Appendix: the entries as recorded");
    page.raw("<dl>");
    for (index, entry) in entries {
        let _ = write!(page.0, "<dt id=\"e{index}\">#{index}</dt><dd><code>");
        page.text(&entry.to_string());
        page.raw("</code></dd>");
    }
    page.raw("</dl></section>");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report(entries: Vec<Value>) -> String {
        let entries = entries.into_iter().enumerate().map(|(i, e)| (i as u64, e)).collect();
        let input = ReportInput {
            origin: "notarium.example/log".into(),
            from: "2026-01-01T00:00:00Z".into(),
            to: "2026-02-01T00:00:00Z".into(),
            tree_size: 10,
            entries,
        };
        render_html(&input)
    }

    #[test]
    fn escape_replaces_every_significant_character() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn register_values_are_escaped_everywhere_they_appear() {
        let hostile = "<script>alert(1)</script>";
        let html = report(vec![
            json!({"kind": "attest", "time": "t", "actor": {"name": hostile},
                   "subject": {"registry": "r", "repository": format!("app/{hostile}"), "digest": "sha256:aa"},
                   "details": {"predicate_type": "javascript:alert(1)\"><img src=x onerror=alert(1)>", "key": hostile, "key_version": 1}}),
            json!({"kind": "verify", "time": hostile, "actor": {"name": "a"},
                   "subject": {"registry": "r", "repository": "app", "digest": hostile},
                   "details": {"allowed": false, "reasons": [hostile]}}),
            json!({"kind": hostile, "time": "t"}),
        ]);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("javascript:alert(1)&quot;&gt;&lt;img"));
        // No register value becomes a link target: every href is an index anchor.
        for href in html.split("href=\"").skip(1) {
            let target = href.split('"').next().unwrap_or_default();
            assert!(target.starts_with("#e") && target[2..].chars().all(|c| c.is_ascii_digit()), "{target}");
        }
    }

    #[test]
    fn the_page_loads_nothing_and_runs_nothing() {
        let html = report(vec![json!({"kind": "sign", "time": "t", "subject": {"repository": "app"}})]);
        assert!(html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""));
        for forbidden in ["<script", "<link", "<img", "src=", "url(", "@import"] {
            assert!(!html.contains(forbidden), "{forbidden}");
        }
    }

    #[test]
    fn a_signature_by_a_rotated_out_version_is_a_finding_with_both_indices() {
        let sign = |version: u64| {
            json!({"kind": "sign", "time": "t", "subject": {"registry": "r", "repository": "app", "digest": "sha256:aa"},
                   "details": {"key": "release", "key_version": version}})
        };
        let rotated = json!({"kind": "key-rotated", "time": "t", "subject": {"key": "release", "version": 2}});
        let html = report(vec![sign(1), rotated, sign(2), sign(1)]);
        let finding = html.split("Signatures by a key version after its rotation").nth(1).unwrap();
        let finding = finding.split("</table>").next().unwrap();
        assert!(finding.contains("<a href=\"#e3\">#3</a></td><td><code>release</code></td><td><code>1</code></td><td><code>2</code></td><td><a href=\"#e1\">#1</a>"), "{finding}");
        assert!(!finding.contains("#e0\"") && !finding.contains("#e2\""), "{finding}");
    }

    #[test]
    fn rows_link_to_their_entries_in_the_appendix() {
        let pull = json!({"kind": "registry-pull", "time": "t", "actor": {"name": "ci"},
                          "subject": {"registry": "r", "repository": "app", "digest": "sha256:bb"},
                          "details": {"media_type": "application/vnd.oci.image.manifest.v1+json"}});
        let html = report(vec![json!({"kind": "key-added", "subject": {"key": "k", "version": 1}}), pull]);
        assert!(
            html.contains("<a href=\"#e1\">#1</a></td><td>app</td><td class=\"digest\"><code>sha256:bb</code>"),
            "{html}"
        );
        assert!(html.contains("<dt id=\"e1\">#1</dt>"));
        assert!(html.contains("<dt id=\"e0\">#0</dt>"));
    }
}

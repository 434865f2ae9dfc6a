//! `[[sign_on_push]]` rules and `[sign_queue]`: which registry pushes notarium signs by itself, with which
//! key, after which attestations, and how its queue's workers retry (docs/API.md §5, docs/FORMATS.md §26).
//!
//! Owns: the rules' shape, their checks at start-up and which pushed (repository, tag) a rule matches.
//! Must not touch: the queue or signing (`service`).

use serde::Deserialize;

use super::ConfigError;
use crate::glob::glob_matches;

/// One rule: a push of a manifest under a tag matching `tags` to a repository matching `repositories`
/// (`host/path` globs, `*` within a segment, `**` across) is signed with `key` once every predicate type in
/// `require` has an attestation on the digest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SignOnPushRule {
    /// Names the rule in the queue and in `GET /v1/status`.
    pub name: String,
    pub repositories: Vec<String>,
    /// Tag globs; absent: every tag.
    #[serde(default = "every_tag")]
    pub tags: Vec<String>,
    /// `id` (the key's current version when the job runs) or `id@N`.
    pub key: String,
    /// Predicate types that must each have an attestation on the digest (its `.att` tag) before it is signed.
    #[serde(default)]
    pub require: Vec<String>,
}

fn every_tag() -> Vec<String> {
    vec!["*".into()]
}

/// Longest rule name and pattern accepted (they are labels in answers and rows, not documents).
const MAX_NAME: usize = 128;

impl SignOnPushRule {
    /// True when this rule covers a push of `tag` to `repository` (`host/path`).
    pub fn matches(&self, repository: &str, tag: &str) -> bool {
        self.repositories.iter().any(|glob| glob_matches(glob, repository))
            && self.tags.iter().any(|glob| glob_matches(glob, tag))
    }

    fn check(&self, index: usize, keys: &[&str]) -> Result<(), ConfigError> {
        let invalid = |field: &str, why: String| {
            ConfigError::Invalid(format!("[[sign_on_push]] #{} ({:?}) {field}: {why}", index + 1, self.name))
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_NAME
            && self.name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !name_ok {
            return Err(invalid("name", format!("must be 1 to {MAX_NAME} of A-Z a-z 0-9 - _ .")));
        }
        if self.repositories.is_empty() {
            return Err(invalid("repositories", "name at least one repository glob".into()));
        }
        for (field, globs) in [("repositories", &self.repositories), ("tags", &self.tags), ("require", &self.require)] {
            if let Some(bad) = globs.iter().find(|g| g.is_empty() || g.len() > 512 || g.chars().any(char::is_control)) {
                return Err(invalid(
                    field,
                    format!("{bad:?} is empty, longer than 512 bytes or has control characters"),
                ));
            }
        }
        if self.tags.is_empty() {
            return Err(invalid("tags", "name at least one tag glob, or leave tags out for every tag".into()));
        }
        let key = crate::keys::KeyRef::parse(&self.key).map_err(|e| invalid("key", e.to_string()))?;
        if !keys.contains(&key.id.as_str()) {
            return Err(invalid("key", format!("{:?} is not one of the [[keys]]", key.id)));
        }
        Ok(())
    }
}

/// `[sign_queue]`: the workers that run sign-on-push jobs in `notarium serve`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SignQueueConfig {
    /// Jobs run at once by this process (1–64).
    pub workers: usize,
    /// Attempts before a job is `failed` (1–100).
    pub max_attempts: u32,
    /// The first retry's delay; each later one doubles it, up to `max_backoff_secs`.
    pub backoff_secs: u64,
    pub max_backoff_secs: u64,
    /// How long a claimed job is its worker's: past it (the worker died), another worker takes it.
    pub lease_secs: u64,
}

impl Default for SignQueueConfig {
    fn default() -> Self {
        Self { workers: 2, max_attempts: 5, backoff_secs: 2, max_backoff_secs: 300, lease_secs: 300 }
    }
}

impl SignQueueConfig {
    fn check(&self) -> Result<(), ConfigError> {
        let out = |field: &str, value: u64, range: (u64, u64)| match (range.0..=range.1).contains(&value) {
            true => Ok(()),
            false => Err(ConfigError::Invalid(format!(
                "[sign_queue] {field} is {value}; it must be {} to {}",
                range.0, range.1
            ))),
        };
        out("workers", self.workers as u64, (1, 64))?;
        out("max_attempts", u64::from(self.max_attempts), (1, 100))?;
        out("backoff_secs", self.backoff_secs, (1, 3600))?;
        out("max_backoff_secs", self.max_backoff_secs, (self.backoff_secs, 86_400))?;
        out("lease_secs", self.lease_secs, (10, 86_400))
    }
}

/// Checks every rule against the configured key ids, and that rule names are unique.
pub(super) fn check_rules(rules: &[SignOnPushRule], queue: &SignQueueConfig, keys: &[&str]) -> Result<(), ConfigError> {
    queue.check()?;
    let mut names = std::collections::HashSet::new();
    for (index, rule) in rules.iter().enumerate() {
        rule.check(index, keys)?;
        if !names.insert(rule.name.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "[[sign_on_push]] #{} name {:?} is used by an earlier rule: names must be unique",
                index + 1,
                rule.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> SignOnPushRule {
        SignOnPushRule {
            name: "team-a".into(),
            repositories: vec!["registry.example/team-a/**".into()],
            tags: vec!["v*".into()],
            key: "ci@2".into(),
            require: vec![],
        }
    }

    #[test]
    fn a_rule_matches_its_repositories_and_tags_only() {
        assert!(rule().matches("registry.example/team-a/app", "v1.2"));
        assert!(rule().matches("registry.example/team-a/sub/app", "v1"));
        assert!(!rule().matches("registry.example/team-b/app", "v1"));
        assert!(!rule().matches("registry.example/team-a/app", "latest"));
    }

    #[test]
    fn bad_rules_are_named_with_their_field() {
        let queue = SignQueueConfig::default();
        assert!(check_rules(&[rule()], &queue, &["ci"]).is_ok());
        let cases: [(SignOnPushRule, &str); 5] = [
            (SignOnPushRule { key: "nope".into(), ..rule() }, "key"),
            (SignOnPushRule { key: "ci@x".into(), ..rule() }, "key"),
            (SignOnPushRule { repositories: vec![], ..rule() }, "repositories"),
            (SignOnPushRule { name: "a b".into(), ..rule() }, "name"),
            (SignOnPushRule { tags: vec![], ..rule() }, "tags"),
        ];
        for (bad, field) in cases {
            let Err(ConfigError::Invalid(message)) = check_rules(std::slice::from_ref(&bad), &queue, &["ci"]) else {
                panic!("{bad:?} accepted")
            };
            assert!(
                message.starts_with("[[sign_on_push]] #1") && message.contains(&format!(") {field}:")),
                "{message}"
            );
        }
        let Err(ConfigError::Invalid(message)) = check_rules(&[rule(), rule()], &queue, &["ci"]) else {
            panic!("a repeated name was accepted")
        };
        assert!(message.contains("#2 name \"team-a\""), "{message}");
        let queue = SignQueueConfig { workers: 0, ..Default::default() };
        let Err(ConfigError::Invalid(message)) = check_rules(&[], &queue, &["ci"]) else { panic!("0 workers") };
        assert!(message.contains("[sign_queue] workers is 0"), "{message}");
    }
}

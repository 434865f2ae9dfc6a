//! CEL conditions over an attestation's `predicate` and the signer's `certificate` (a keyless signer's
//! subject, issuer and Fulcio extensions): compiled once at load, evaluated per attestation or signature,
//! and a failure explained by the values of the `predicate.…` / `certificate.…` fields the expression reads.
//!
//! Must not touch: anything but the JSON values it is given.

use serde_json::Value;

/// A compiled condition and its source text.
pub struct Condition {
    pub source: String,
    program: cel::Program,
    /// The `predicate.a.b` / `certificate.x` paths the expression reads, for reasons.
    fields: Vec<String>,
}

/// The variables of an attestation's conditions, and of a keyless authority's.
pub(super) const ATTESTATION_VARIABLES: [&str; 2] = ["predicate", "certificate"];
pub(super) const CERTIFICATE_VARIABLES: [&str; 1] = ["certificate"];

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition").field("source", &self.source).finish()
    }
}

/// What evaluating a condition found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionOutcome {
    Holds,
    /// A sentence naming the fields, the values found and the expression required.
    Fails(String),
}

impl Condition {
    /// An attestation's condition: reads `predicate` and the signer's `certificate`.
    pub fn compile(source: &str) -> Result<Self, String> {
        Self::compile_over(source, &ATTESTATION_VARIABLES)
    }

    /// A condition that may read only `variables`.
    pub fn compile_over(source: &str, variables: &[&str]) -> Result<Self, String> {
        let program = cel::Program::compile(source).map_err(|e| format!("not a CEL expression: {e}"))?;
        let references = program.references();
        if let Some(other) = references.variables().into_iter().find(|v| !variables.contains(v)) {
            let allowed = variables.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(" and ");
            return Err(format!("unknown variable {other:?}: conditions read only {allowed}"));
        }
        let fields = variables.iter().flat_map(|v| variable_paths(source, v)).collect();
        Ok(Self { source: source.to_owned(), program, fields })
    }

    /// Evaluates over an attestation's predicate alone (no certificate: a key signed it).
    pub fn evaluate(&self, predicate: &Value) -> ConditionOutcome {
        self.evaluate_with(&[("predicate", predicate)])
    }

    /// Evaluates with each `(name, value)` bound; a variable left out reads as missing.
    pub fn evaluate_with(&self, variables: &[(&str, &Value)]) -> ConditionOutcome {
        let mut context = cel::Context::default();
        let bound = variables.iter().try_for_each(|(name, value)| {
            let value = cel::to_value(value).map_err(|e| e.to_string())?;
            context.add_variable_from_value(*name, value);
            Ok::<_, String>(())
        });
        let result = bound.and_then(|()| self.program.execute(&context).map_err(|e| e.to_string()));
        match result {
            Ok(cel::Value::Bool(true)) => ConditionOutcome::Holds,
            Ok(other) => ConditionOutcome::Fails(self.explain(variables, &format!("{other:?}"))),
            Err(e) => ConditionOutcome::Fails(self.explain(variables, &e)),
        }
    }

    fn explain(&self, variables: &[(&str, &Value)], outcome: &str) -> String {
        let found: Vec<String> = self
            .fields
            .iter()
            .map(|path| {
                let (variable, rest) = path.split_once('.').unwrap_or((path, ""));
                let value = variables.iter().find(|(name, _)| *name == variable).and_then(|(_, v)| lookup(v, rest));
                let shown = if variable == "predicate" { rest } else { path.as_str() };
                match value {
                    Some(v) => format!("{shown} was {v}"),
                    None => format!("{shown} is missing"),
                }
            })
            .collect();
        let found = if found.is_empty() { format!("the condition gave {outcome}") } else { found.join(", ") };
        format!("{found}, policy requires {}", self.source)
    }
}

/// `variable.x.y` paths in `source` (outside string literals), with the variable's name.
fn variable_paths(source: &str, variable: &str) -> Vec<String> {
    let prefix = format!("{variable}.");
    let mut paths = Vec::new();
    let mut rest = strip_strings(source);
    while let Some(at) = rest.find(&prefix) {
        let boundary = rest[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        let tail = &rest[at + prefix.len()..];
        let end = tail.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(tail.len());
        let path = format!("{variable}.{}", tail[..end].trim_end_matches('.'));
        if boundary && path.len() > prefix.len() && !paths.contains(&path) {
            paths.push(path);
        }
        rest = tail[end..].to_owned();
    }
    paths
}

/// `source` with the contents of its string literals blanked, so a literal never reads as a path.
fn strip_strings(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut quote = None;
    for c in source.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => continue,
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
        out.push(c);
    }
    out
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const REPO: &str =
        r#"predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app""#;

    fn provenance(repository: &str) -> Value {
        json!({"buildDefinition": {"externalParameters": {"workflow": {"repository": repository}}}})
    }

    #[test]
    fn a_condition_holds_or_names_the_field_and_values() {
        let c = Condition::compile(REPO).unwrap();
        assert_eq!(c.evaluate(&provenance("https://github.com/acme/app")), ConditionOutcome::Holds);
        let ConditionOutcome::Fails(reason) = c.evaluate(&provenance("https://github.com/evil/app")) else {
            panic!("must fail")
        };
        assert_eq!(
            reason,
            format!(
                "buildDefinition.externalParameters.workflow.repository was \"https://github.com/evil/app\", policy \
                 requires {REPO}"
            )
        );
        let ConditionOutcome::Fails(reason) = c.evaluate(&json!({})) else { panic!("must fail") };
        assert!(reason.contains("workflow.repository is missing"), "{reason}");
    }

    #[test]
    fn conditions_are_checked_at_compile_time() {
        assert!(Condition::compile("predicate.a ==").is_err());
        assert!(Condition::compile("other.a == 1").unwrap_err().contains("\"other\""));
        assert!(Condition::compile("has(predicate.a) && predicate.b.size() > 0").is_ok());
        assert!(
            Condition::compile_over("predicate.a == 1", &CERTIFICATE_VARIABLES).unwrap_err().contains("`certificate`")
        );
    }

    #[test]
    fn a_certificate_condition_names_the_extension_and_its_value() {
        let c =
            Condition::compile_over(r#"certificate.sourceRepositoryRef == "refs/heads/main""#, &CERTIFICATE_VARIABLES)
                .unwrap();
        let main = json!({"subject": "s", "issuer": "i", "sourceRepositoryRef": "refs/heads/main"});
        assert_eq!(c.evaluate_with(&[("certificate", &main)]), ConditionOutcome::Holds);
        let other = json!({"sourceRepositoryRef": "refs/heads/dev"});
        let ConditionOutcome::Fails(reason) = c.evaluate_with(&[("certificate", &other)]) else { panic!("must fail") };
        assert!(reason.starts_with("certificate.sourceRepositoryRef was \"refs/heads/dev\""), "{reason}");
        let ConditionOutcome::Fails(reason) = c.evaluate_with(&[]) else { panic!("a key signer has no certificate") };
        assert!(reason.contains("certificate.sourceRepositoryRef is missing"), "{reason}");
    }
}

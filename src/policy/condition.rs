//! CEL conditions over an attestation's `predicate`: compiled once at load, evaluated per attestation,
//! and a failure explained by the values of the `predicate.…` fields the expression reads.
//!
//! Must not touch: anything but the predicate JSON it is given.

use serde_json::Value;

/// A compiled condition and its source text.
pub struct Condition {
    pub source: String,
    program: cel::Program,
    /// The `predicate.a.b` paths the expression reads, without `predicate.`, for reasons.
    fields: Vec<String>,
}

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
    pub fn compile(source: &str) -> Result<Self, String> {
        let program = cel::Program::compile(source).map_err(|e| format!("not a CEL expression: {e}"))?;
        let references = program.references();
        if let Some(other) = references.variables().into_iter().find(|v| *v != "predicate") {
            return Err(format!("unknown variable {other:?}: conditions read only `predicate`"));
        }
        Ok(Self { source: source.to_owned(), program, fields: predicate_paths(source) })
    }

    pub fn evaluate(&self, predicate: &Value) -> ConditionOutcome {
        let mut context = cel::Context::default();
        let result = cel::to_value(predicate).map_err(|e| e.to_string()).and_then(|v| {
            context.add_variable_from_value("predicate", v);
            self.program.execute(&context).map_err(|e| e.to_string())
        });
        match result {
            Ok(cel::Value::Bool(true)) => ConditionOutcome::Holds,
            Ok(other) => ConditionOutcome::Fails(self.explain(predicate, &format!("{other:?}"))),
            Err(e) => ConditionOutcome::Fails(self.explain(predicate, &e)),
        }
    }

    fn explain(&self, predicate: &Value, outcome: &str) -> String {
        let found: Vec<String> = self
            .fields
            .iter()
            .map(|path| match lookup(predicate, path) {
                Some(v) => format!("{path} was {v}"),
                None => format!("{path} is missing"),
            })
            .collect();
        let found = if found.is_empty() { format!("the predicate gave {outcome}") } else { found.join(", ") };
        format!("{found}, policy requires {}", self.source)
    }
}

/// `predicate.x.y` paths in `source` (outside string literals), without the `predicate.` prefix.
fn predicate_paths(source: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = strip_strings(source);
    while let Some(at) = rest.find("predicate.") {
        let boundary = rest[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        let tail = &rest[at + "predicate.".len()..];
        let end = tail.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(tail.len());
        let path = tail[..end].trim_end_matches('.');
        if boundary && !path.is_empty() && !paths.iter().any(|p| p == path) {
            paths.push(path.to_owned());
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
    }
}

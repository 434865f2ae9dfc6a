//! Policy files and CEL conditions: loading YAML and compiling conditions never panics nor hangs, and a
//! compiled condition evaluates against any predicate (here the input itself, when it is JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::policy::{Condition, PolicySet};

fuzz_target!(|input: &str| {
    if let Ok((set, _)) = PolicySet::parse("fuzz.yaml", input) {
        let names: Vec<&str> = set.policies.iter().map(|p| p.name.as_str()).collect();
        for name in names {
            assert!(set.named(name).is_some());
        }
    }
    if let Ok(condition) = Condition::compile(input) {
        let predicate = serde_json::json!({"buildDefinition": {"buildType": "x", "externalParameters": {}}});
        let _ = condition.evaluate(&predicate);
    }
});

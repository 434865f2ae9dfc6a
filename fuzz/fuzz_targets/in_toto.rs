//! in-toto Statements: a parsed statement serializes and parses back to itself; checking its predicate as
//! SLSA provenance never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::formats::in_toto::{Statement, check_slsa_provenance_v1};

fuzz_target!(|input: &[u8]| {
    let Ok(statement) = Statement::parse(input) else { return };
    let again = Statement::parse(&statement.to_json()).expect("a serialized statement parses");
    assert_eq!(again, statement);
    for subject in &statement.subject {
        let _ = subject.sha256_hex();
    }
    let _ = check_slsa_provenance_v1(&statement.predicate);
});

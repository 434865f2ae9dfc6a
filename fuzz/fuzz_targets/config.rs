//! `notarium.toml`: parsing and checking a config text never panics; what is accepted as TOML is
//! accepted the same way when read again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::config::Config;

fuzz_target!(|input: &str| {
    let first = Config::parse_toml(input).map_err(|e| e.to_string());
    let second = Config::parse_toml(input).map_err(|e| e.to_string());
    assert_eq!(first.is_ok(), second.is_ok());
});

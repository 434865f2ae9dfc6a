//! OIDC ID tokens and JWK sets: reading a token's header and issuer and a set's keys never panics; a
//! header is read only from a token of three dot-separated parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::auth::oidc::parse_unverified;

fuzz_target!(|input: &str| {
    // The token is the first line, the JWK set the rest: both are fuzzed from one input.
    let (jwt, jwks) = input.split_once('\n').unwrap_or((input, ""));
    let read = parse_unverified(jwt, jwks.as_bytes());
    if read.header.is_some() {
        assert_eq!(jwt.split('.').count(), 3, "a header read from {jwt:?}");
    }
});

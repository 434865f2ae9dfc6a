//! Glob patterns over names: policy images and identities, signer token scopes, OIDC claim rules and
//! egress allow-lists all match with [`glob_matches`].
//!
//! A leaf module: pure, no I/O, and it uses no other module of the crate.

/// `*` matches within one path segment, `**` across segments; everything else literally.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    glob_bytes(pattern.as_bytes(), name.as_bytes())
}

fn glob_bytes(pattern: &[u8], name: &[u8]) -> bool {
    match pattern {
        [] => name.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=name.len()).any(|i| glob_bytes(rest, &name[i..])),
        [b'*', rest @ ..] => {
            let segment = name.iter().position(|&b| b == b'/').unwrap_or(name.len());
            (0..=segment).any(|i| glob_bytes(rest, &name[i..]))
        }
        [p, rest @ ..] => name.first() == Some(p) && glob_bytes(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn one_star_stays_in_its_segment_and_two_cross_segments() {
        assert!(glob_matches("registry.example/team-a/*", "registry.example/team-a/app"));
        assert!(!glob_matches("registry.example/team-a/*", "registry.example/team-a/sub/app"));
        assert!(glob_matches("registry.example/**", "registry.example/a/b/c"));
        assert!(glob_matches("*.example", "registry.example"));
        assert!(!glob_matches("registry.example", "registry.example2"));
        assert!(glob_matches("", ""));
    }
}

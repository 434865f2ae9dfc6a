//! Token buckets per caller or per source address: each may burst up to its per-minute allowance,
//! refilled evenly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use super::AuthError;

/// Callers not seen for this long are forgotten, so the table stays as small as the active callers.
const FORGET_AFTER_SECS: f64 = 600.0;

pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    refreshed: Instant,
}

impl RateLimiter {
    /// `0` means no limit.
    pub fn per_minute(per_minute: u32) -> Self {
        Self { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request from `caller`'s allowance, or says when the next one will be there.
    pub fn admit(&self, caller: &str) -> Result<(), AuthError> {
        self.check(caller, true)
    }

    /// Whether `caller` has a request left, without taking it.
    pub fn has_room(&self, caller: &str) -> Result<(), AuthError> {
        self.check(caller, false)
    }

    fn check(&self, caller: &str, take: bool) -> Result<(), AuthError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("not poisoned");
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.refreshed).as_secs_f64() < FORGET_AFTER_SECS);
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket { tokens: capacity, refreshed: now });
        let elapsed = now.duration_since(bucket.refreshed).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.refreshed = now;
        if bucket.tokens >= 1.0 {
            if take {
                bucket.tokens -= 1.0;
            }
            return Ok(());
        }
        Err(AuthError::RateLimited(((1.0 - bucket.tokens) / per_second).ceil() as u64))
    }
}

/// The bucket a source address counts against: an IPv4 address, or the /64 network of an IPv6 one (one
/// host holds a whole /64, so counting its addresses one by one would give it billions of allowances).
pub(super) fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_its_burst_then_is_told_when_to_retry_and_others_are_unaffected() {
        let limiter = RateLimiter::per_minute(3);
        for _ in 0..3 {
            limiter.admit("a").unwrap();
        }
        let Err(AuthError::RateLimited(retry)) = limiter.admit("a") else { panic!("fourth request admitted") };
        assert!((1..=20).contains(&retry), "{retry}");
        limiter.admit("b").unwrap();
    }

    #[test]
    fn looking_for_room_takes_none() {
        let limiter = RateLimiter::per_minute(1);
        for _ in 0..5 {
            limiter.has_room("a").unwrap();
        }
        limiter.admit("a").unwrap();
        assert!(limiter.has_room("a").is_err());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = RateLimiter::per_minute(0);
        for _ in 0..1000 {
            limiter.admit("a").unwrap();
        }
    }

    #[test]
    fn an_ipv6_network_is_one_source_and_a_mapped_ipv4_address_is_its_ipv4_self() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }
}

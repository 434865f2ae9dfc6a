//! Per-caller token buckets: each caller may burst up to its per-minute allowance, refilled evenly.

use std::collections::HashMap;
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
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(AuthError::RateLimited(((1.0 - bucket.tokens) / per_second).ceil() as u64))
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
    fn zero_means_unlimited() {
        let limiter = RateLimiter::per_minute(0);
        for _ in 0..1000 {
            limiter.admit("a").unwrap();
        }
    }
}

//! The per-backend limiter (the fallback when the library is not preloaded, or every shared
//! budget is in use, and a sync's own lower cap): a governor limiter per token and rate, burst
//! 1, spaced by `pace::interval`.

use super::interval;
use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

pub type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// Limiters by (API token, interval in microseconds).
type LimiterMap = HashMap<(String, u64), Arc<Limiter>>;

static LIMITERS: Lazy<Mutex<LimiterMap>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// When this backend was last served by each shared budget (by key): the budget lets the
/// backend served least recently go first.
static SERVED: Lazy<Mutex<HashMap<u64, u64>>> = Lazy::new(|| Mutex::new(HashMap::new()));

pub fn last_served(key: u64) -> u64 {
    SERVED.lock().map(|m| m.get(&key).copied().unwrap_or(0)).unwrap_or(0)
}

pub fn served(key: u64, at: u64) {
    if let Ok(mut m) = SERVED.lock() {
        m.insert(key, at);
    }
}

/// The backend's limiter for one API token at one rate: shared by every scan and write of this
/// backend that uses the token, so two scans in one query do not double the rate.
pub fn for_token(api_url: &str, token: &str, requests_per_second: f64) -> Arc<Limiter> {
    let period = interval(requests_per_second);
    let key = (format!("{api_url}\u{0}{token}"), period.as_nanos() as u64);
    let mut map = LIMITERS.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(key)
        .or_insert_with(|| {
            let quota = Quota::with_period(period).expect("period is positive").allow_burst(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(quota))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaced_without_bursts() {
        let l = for_token("http://x", "t-spaced", 5.0);
        assert!(l.check().is_ok());
        assert!(l.check().is_err(), "burst is 1");
        assert!(Arc::ptr_eq(&l, &for_token("http://x", "t-spaced", 5.0)));
        assert!(!Arc::ptr_eq(&l, &for_token("http://x", "another", 5.0)));
    }
}

//! Request pacing, in one place. The platform allows 5 requests per second per token: every
//! request of the cluster on a token waits for a slot `interval` apart (a little wider than
//! 1/rps, so network jitter never puts six requests in one of the platform's one-second
//! windows). The slots come from the token's budget in shared memory (`budget`, one for the
//! whole cluster when the library is preloaded) or, without it, from this backend's own
//! limiter (`limiter`); a sync's lower rate is a second limiter on top. A 429 moves the budget
//! for every backend on the token.

pub mod budget;
pub mod limiter;

use budget::{Budgets, Slot, Ticket};
use limiter::Limiter;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The platform's limit per token (the seed: at most 5 requests per second).
pub const PLATFORM_REQUESTS_PER_SECOND: f64 = 5.0;

/// Extra spacing over 1/rps: 2% (204 ms at 5/s, 4.9 requests per second).
pub const SAFETY_MARGIN: f64 = 1.02;

/// The time between two requests at `requests_per_second`.
pub fn interval(requests_per_second: f64) -> Duration {
    Duration::from_secs_f64(SAFETY_MARGIN / requests_per_second.max(0.01))
}

/// Where a client's slots come from.
enum Pace {
    /// This backend's own limiter (the library is not preloaded, or every budget is in use).
    Local(Arc<Limiter>),
    /// The cluster's budget for the api_url and token.
    Shared(Shared),
}

/// A client of a shared budget: the slot that holds it, found again if it moves (a slot unused
/// for a minute may be reclaimed for another token), and the backend's limiter for when every
/// slot is in use.
struct Shared {
    budgets: &'static Budgets,
    slot: Mutex<&'static Slot>,
    key: u64,
    gap: u64,
    server: String,
    local: Arc<Limiter>,
}

impl Shared {
    fn slot(&self) -> &'static Slot {
        *self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One request's wait in the budget; false if the budget has left its slot.
    async fn wait(&self, slot: &'static Slot) -> bool {
        let mut w = SharedWait { slot, ticket: Ticket::for_key(self.key, std::process::id(), limiter::last_served(self.key)) };
        loop {
            match slot.try_take(&mut w.ticket, budget::now_ns()) {
                Ok(()) => return true,
                Err(budget::MOVED) => return false,
                // Short sleeps: who goes next is decided when the slot comes free.
                Err(wait) => tokio::time::sleep(Duration::from_nanos(wait.clamp(500_000, 20_000_000))).await,
            }
        }
    }

    async fn acquire(&self) {
        loop {
            if self.wait(self.slot()).await {
                limiter::served(self.key, budget::now_ns());
                return;
            }
            match self.budgets.slot(self.key, self.gap, &self.server, budget::now_ns()) {
                Some(found) => *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = found,
                None => return self.local.until_ready().await,
            }
        }
    }
}

/// A request waiting in a shared budget; dropping it (the request was cancelled) leaves.
struct SharedWait {
    slot: &'static Slot,
    ticket: Ticket,
}

impl Drop for SharedWait {
    fn drop(&mut self) {
        self.slot.leave(&mut self.ticket);
    }
}

/// The pacing of one client: its token's slots, and its own lower cap if any.
pub struct Pacer {
    pace: Pace,
    cap: Option<Arc<Limiter>>,
}

impl Pacer {
    /// The token's shared budget when `budgets` has (or can claim) its slot, else this
    /// backend's limiter; `cap`: a lower rate kept on top (replica syncs).
    pub fn new(api_url: &str, token: &str, requests_per_second: f64, cap: Option<f64>, budgets: Option<&'static Budgets>, server_name: &str) -> Pacer {
        let key = budget::key(api_url, token);
        let gap = interval(requests_per_second).as_nanos() as u64;
        let local = || limiter::for_token(api_url, token, requests_per_second);
        let pace = match budgets.and_then(|b| b.slot(key, gap, server_name, budget::now_ns()).map(|s| (b, s))) {
            Some((budgets, slot)) => Pace::Shared(Shared { budgets, slot: Mutex::new(slot), key, gap, server: server_name.to_string(), local: local() }),
            None => Pace::Local(local()),
        };
        let cap = cap.filter(|c| *c < requests_per_second).map(|c| limiter::for_token(api_url, token, c));
        Pacer { pace, cap }
    }

    /// Waits for the next slot (cancel-safe: a dropped wait leaves the budget's queue).
    pub async fn acquire(&self) {
        if let Some(cap) = &self.cap {
            cap.until_ready().await;
        }
        match &self.pace {
            Pace::Local(l) => l.until_ready().await,
            Pace::Shared(s) => s.acquire().await,
        }
    }

    /// A 429: with a shared budget, every backend on the token waits `wait` too.
    pub fn throttle(&self, wait: Duration) {
        if let Pace::Shared(s) = &self.pace {
            s.slot().throttle(s.key, budget::now_ns() + wait.as_nanos() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_keep_below_the_platform_rate() {
        assert_eq!(interval(PLATFORM_REQUESTS_PER_SECOND), Duration::from_millis(204));
        assert!(1.0 / interval(PLATFORM_REQUESTS_PER_SECOND).as_secs_f64() < PLATFORM_REQUESTS_PER_SECOND);
    }
}

//! One request budget per (api_url, token) for the whole cluster, in shared memory when the
//! library is preloaded. Pure Rust over atomics: the table lives in Postgres's shared memory
//! (see `fdw/budget.rs`), but nothing here calls Postgres, so the request tasks of any backend
//! (on its HTTP worker thread) wait here directly.
//!
//! Sends are spaced by the budget's interval, GCRA-like: `next = max(now, next) + interval`,
//! decided under the slot's lock and waited for outside it. Who sends when the slot comes free
//! is decided then, not at arrival: the waiter whose backend was served least recently (never
//! served goes first; ties by arrival). So a one-row lookup never queues behind the pages of
//! long scans: it waits at most one interval. A 429 seen by any backend moves `next` for all.
//! The clock is CLOCK_MONOTONIC, one clock for every process of the machine.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Budgets in the table (distinct api_url + token pairs in use at once).
pub const SLOTS: usize = 256;
/// Requests waiting at once per budget (more wait unregistered, after the registered ones).
pub const WAITERS: usize = 64;
/// What `Slot::try_take` answers a ticket whose budget is no longer in that slot: find the
/// budget's slot again (`Budgets::slot`).
pub const MOVED: u64 = u64::MAX;
/// A waiter not seen polling for this long is gone (its backend exited mid-wait).
const STALE_NS: u64 = 2_000_000_000;
/// Longest the server name shown in the budgets view may be.
const NAME_BYTES: usize = 64;

/// Nanoseconds of CLOCK_MONOTONIC: the same clock in every process of the machine.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The key of a budget: a hash of api_url and token (the token itself is never stored).
pub fn key(api_url: &str, token: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::new().chain_update(api_url.as_bytes()).chain_update([0u8]).chain_update(token.as_bytes()).finalize();
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes")).max(1)
}

/// One request waiting for its turn.
#[repr(C)]
pub struct Waiter {
    /// The waiting backend's pid; 0 for a free entry.
    pid: AtomicU32,
    /// When that backend was last served by this budget (0: never): lower goes first.
    served: AtomicU64,
    arrived: AtomicU64,
    /// The last time the waiter polled: a waiter that stops polling is gone.
    seen: AtomicU64,
}

/// The budget of one api_url + token.
#[repr(C)]
pub struct Slot {
    lock: AtomicU32,
    /// `key()` of the budget; 0 for a free slot.
    key: AtomicU64,
    interval_ns: AtomicU64,
    next_ns: AtomicU64,
    last_used_ns: AtomicU64,
    sent: AtomicU64,
    throttled: AtomicU64,
    /// Sends per second of the last minute: `(second << 32) | count`, by second % 60.
    minute: [AtomicU64; 60],
    name: [AtomicU8; NAME_BYTES],
    waiters: [Waiter; WAITERS],
}

/// The table of budgets.
#[repr(C)]
pub struct Budgets {
    /// Held while a slot is claimed, so two backends starting on one token at once claim one.
    claim: AtomicU32,
    slots: [Slot; SLOTS],
}

/// Holds a slot's lock; released when dropped. The critical sections are a few loads and
/// stores and never wait, so a spin lock (shared by processes: one word of shared memory,
/// holding the owner's pid) is enough. A process can still exit inside one (a backend that ends
/// while its HTTP thread holds the lock): a waiter that finds the owner gone takes the lock
/// over, so no lock outlives its process. The state it guards is atomics only, each consistent
/// on its own.
struct Locked<'a>(&'a AtomicU32);

impl<'a> Locked<'a> {
    fn new(lock: &'a AtomicU32) -> Locked<'a> {
        let me = std::process::id().max(1);
        let mut spins = 0u32;
        loop {
            let owner = match lock.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Locked(lock),
                Err(owner) => owner,
            };
            spins += 1;
            if !spins.is_multiple_of(64) {
                std::hint::spin_loop();
                continue;
            }
            if owner != 0 && owner != me && !process_alive(owner) && lock.compare_exchange(owner, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return Locked(lock);
            }
            std::thread::yield_now();
        }
    }
}

/// Whether process `pid` exists (signal 0 checks without signalling).
fn process_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only reports whether the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

impl Waiter {
    const fn new() -> Waiter {
        Waiter { pid: AtomicU32::new(0), served: AtomicU64::new(0), arrived: AtomicU64::new(0), seen: AtomicU64::new(0) }
    }

    fn live(&self, now: u64) -> bool {
        self.pid.load(Ordering::Relaxed) != 0 && now.saturating_sub(self.seen.load(Ordering::Relaxed)) < STALE_NS
    }

    fn rank(&self) -> (u64, u64) {
        (self.served.load(Ordering::Relaxed), self.arrived.load(Ordering::Relaxed))
    }
}

/// A request's place in a budget's queue (a waiter entry, if one was free).
#[derive(Debug, Default)]
pub struct Ticket {
    /// The budget the client paces on (`key()`); 0: any.
    pub key: u64,
    pub pid: u32,
    /// When this backend was last served by the budget (0: never).
    pub served: u64,
    arrived: u64,
    entry: Option<usize>,
}

impl Ticket {
    pub fn new(pid: u32, served: u64) -> Ticket {
        Ticket { key: 0, pid, served, arrived: 0, entry: None }
    }

    /// A ticket for the budget of `key`: `try_take` answers `MOVED` if its slot now holds
    /// another budget (reclaimed after a minute unused).
    pub fn for_key(key: u64, pid: u32, served: u64) -> Ticket {
        Ticket { key, ..Ticket::new(pid, served) }
    }
}

/// What the budgets view shows of one budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetStatus {
    pub server: String,
    pub requests_last_minute: u64,
    pub sent: u64,
    pub throttled: u64,
    pub waiting: u64,
    /// Milliseconds until the next send may go (0: now).
    pub next_free_ms: u64,
    pub interval_ms: f64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            lock: AtomicU32::new(0),
            key: AtomicU64::new(0),
            interval_ns: AtomicU64::new(0),
            next_ns: AtomicU64::new(0),
            last_used_ns: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            minute: [const { AtomicU64::new(0) }; 60],
            name: [const { AtomicU8::new(0) }; NAME_BYTES],
            waiters: [const { Waiter::new() }; WAITERS],
        }
    }

    /// One try for the next send: `Ok` when this request may be sent now (the send is counted);
    /// else how long to wait before trying again. Register, then poll until granted; `leave`
    /// if the request is abandoned.
    pub fn try_take(&self, t: &mut Ticket, now: u64) -> Result<(), u64> {
        let _l = Locked::new(&self.lock);
        if t.key != 0 && self.key.load(Ordering::Relaxed) != t.key {
            return Err(MOVED);
        }
        self.last_used_ns.store(now, Ordering::Relaxed);
        if t.entry.is_none() {
            t.arrived = now;
            t.entry = self.register(t, now);
        }
        if let Some(i) = t.entry {
            self.waiters[i].seen.store(now, Ordering::Relaxed);
        }
        let next = self.next_ns.load(Ordering::Relaxed);
        if now < next {
            return Err(next - now);
        }
        let best = self.waiters.iter().enumerate().filter(|(_, w)| w.live(now)).min_by_key(|(_, w)| w.rank()).map(|(i, _)| i);
        // Unregistered requests (the waiter table was full) go after every registered one.
        if best.is_some() && best != t.entry {
            return Err(1_000_000);
        }
        self.next_ns.store(next.max(now) + self.interval_ns.load(Ordering::Relaxed), Ordering::Relaxed);
        if let Some(i) = t.entry.take() {
            self.waiters[i].pid.store(0, Ordering::Relaxed);
        }
        self.count_send(now);
        Ok(())
    }

    fn register(&self, t: &Ticket, now: u64) -> Option<usize> {
        let i = self.waiters.iter().position(|w| !w.live(now))?;
        let w = &self.waiters[i];
        w.pid.store(t.pid.max(1), Ordering::Relaxed);
        w.served.store(t.served, Ordering::Relaxed);
        w.arrived.store(now, Ordering::Relaxed);
        w.seen.store(now, Ordering::Relaxed);
        Some(i)
    }

    fn count_send(&self, now: u64) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let sec = now / 1_000_000_000;
        let b = &self.minute[(sec % 60) as usize];
        let v = b.load(Ordering::Relaxed);
        b.store(if v >> 32 == sec { v + 1 } else { (sec << 32) | 1 }, Ordering::Relaxed);
    }

    /// Gives up a wait (the request was cancelled): its entry is freed.
    pub fn leave(&self, t: &mut Ticket) {
        if let Some(i) = t.entry.take() {
            let _l = Locked::new(&self.lock);
            let w = &self.waiters[i];
            if w.pid.load(Ordering::Relaxed) == t.pid.max(1) && w.arrived.load(Ordering::Relaxed) == t.arrived {
                w.pid.store(0, Ordering::Relaxed);
            }
        }
    }

    /// The API answered 429 for the budget of `key`: nobody sends before `until` (Retry-After,
    /// or the backoff). Nothing if the slot now holds another budget.
    pub fn throttle(&self, key: u64, until: u64) {
        let _l = Locked::new(&self.lock);
        if self.key.load(Ordering::Relaxed) != key {
            return;
        }
        self.throttled.fetch_add(1, Ordering::Relaxed);
        if self.next_ns.load(Ordering::Relaxed) < until {
            self.next_ns.store(until, Ordering::Relaxed);
        }
    }

    fn status(&self, now: u64) -> BudgetStatus {
        let _l = Locked::new(&self.lock);
        let sec = now / 1_000_000_000;
        let recent = self.minute.iter().map(|b| b.load(Ordering::Relaxed)).filter(|v| sec.saturating_sub(v >> 32) < 60).map(|v| v & 0xffff_ffff).sum();
        let name: Vec<u8> = self.name.iter().map(|b| b.load(Ordering::Relaxed)).take_while(|b| *b != 0).collect();
        BudgetStatus {
            server: String::from_utf8_lossy(&name).into_owned(),
            requests_last_minute: recent,
            sent: self.sent.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            waiting: self.waiters.iter().filter(|w| w.live(now)).count() as u64,
            next_free_ms: self.next_ns.load(Ordering::Relaxed).saturating_sub(now) / 1_000_000,
            interval_ms: self.interval_ns.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

impl Budgets {
    pub const fn new() -> Budgets {
        Budgets { claim: AtomicU32::new(0), slots: [const { Slot::new() }; SLOTS] }
    }

    /// The budget of `key`, claimed on first use (a free slot, else the one idle longest, if
    /// idle for a minute); None when every slot is busy (the caller paces on its own then).
    /// `interval_ns` is the server's spacing (the slowest server on one token sets it).
    pub fn slot(&self, key: u64, interval_ns: u64, server: &str, now: u64) -> Option<&Slot> {
        if let Some(s) = self.find(key, interval_ns) {
            return Some(s);
        }
        let _claiming = Locked::new(&self.claim);
        if let Some(s) = self.find(key, interval_ns) {
            return Some(s);
        }
        self.claim_idle(key, interval_ns, server, now)
    }

    /// The slot already holding `key`, its interval raised to `interval_ns` if that is slower.
    fn find(&self, key: u64, interval_ns: u64) -> Option<&Slot> {
        let s = self.slots.iter().find(|s| s.key.load(Ordering::Acquire) == key)?;
        let _l = Locked::new(&s.lock);
        if s.key.load(Ordering::Relaxed) != key {
            return None;
        }
        s.interval_ns.fetch_max(interval_ns, Ordering::Relaxed);
        Some(s)
    }

    /// Claims a free slot, or the one idle longest if idle for a minute, for `key`. Called with
    /// the claim lock held.
    fn claim_idle(&self, key: u64, interval_ns: u64, server: &str, now: u64) -> Option<&Slot> {
        // Unused for a minute: no request waited or was sent, none waits now, and no 429's
        // wait is pending. A client that comes back later finds its budget again (`MOVED`).
        let idle = |s: &Slot| {
            s.key.load(Ordering::Relaxed) == 0
                || (now.saturating_sub(s.last_used_ns.load(Ordering::Relaxed)) > 60_000_000_000
                    && s.next_ns.load(Ordering::Relaxed) <= now
                    && !s.waiters.iter().any(|w| w.live(now)))
        };
        for s in self.slots.iter().filter(|s| idle(s)) {
            let _l = Locked::new(&s.lock);
            if !idle(s) {
                continue;
            }
            s.interval_ns.store(interval_ns, Ordering::Relaxed);
            s.next_ns.store(0, Ordering::Relaxed);
            s.last_used_ns.store(now, Ordering::Relaxed);
            s.sent.store(0, Ordering::Relaxed);
            s.throttled.store(0, Ordering::Relaxed);
            s.minute.iter().for_each(|b| b.store(0, Ordering::Relaxed));
            s.waiters.iter().for_each(|w| w.pid.store(0, Ordering::Relaxed));
            let bytes = server.as_bytes();
            for (i, b) in s.name.iter().enumerate() {
                b.store(if i < NAME_BYTES - 1 { bytes.get(i).copied().unwrap_or(0) } else { 0 }, Ordering::Relaxed);
            }
            s.key.store(key, Ordering::Release);
            return Some(s);
        }
        None
    }

    /// Every budget in use, for the budgets view.
    pub fn status(&self, now: u64) -> Vec<BudgetStatus> {
        self.slots.iter().filter(|s| s.key.load(Ordering::Acquire) != 0).map(|s| s.status(now)).collect()
    }
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const MS: u64 = 1_000_000;

    #[test]
    fn sends_are_spaced_by_the_interval() {
        let b = Budgets::new();
        let s = b.slot(7, 200 * MS, "shop", 1_000 * MS).unwrap();
        let mut t = Ticket::new(1, 0);
        assert_eq!(s.try_take(&mut t, 1_000 * MS), Ok(()));
        let mut t = Ticket::new(1, 1_000 * MS);
        assert_eq!(s.try_take(&mut t, 1_050 * MS), Err(150 * MS));
        assert_eq!(s.try_take(&mut t, 1_200 * MS), Ok(()));
        // Idle for a while: the next send goes at once, then spacing resumes.
        let mut t = Ticket::new(1, 1_200 * MS);
        assert_eq!(s.try_take(&mut t, 5_000 * MS), Ok(()));
        assert_eq!(s.try_take(&mut Ticket::new(1, 5_000 * MS), 5_100 * MS), Err(100 * MS));
        assert!(std::ptr::eq(s, b.slot(7, 200 * MS, "shop", 6_000 * MS).unwrap()), "one slot per key");
        assert!(!std::ptr::eq(s, b.slot(8, 200 * MS, "other", 6_000 * MS).unwrap()));
    }

    #[test]
    fn the_least_recently_served_backend_goes_first() {
        let b = Budgets::new();
        let s = b.slot(7, 200 * MS, "shop", 0).unwrap();
        s.try_take(&mut Ticket::new(9, 0), 0).unwrap();
        // Backend 1 (served at 150) arrives first; backend 2 (never served) arrives later.
        let mut scan = Ticket::new(1, 150 * MS);
        let mut lookup = Ticket::new(2, 0);
        assert!(s.try_take(&mut scan, 100 * MS).is_err());
        assert!(s.try_take(&mut lookup, 190 * MS).is_err());
        assert_eq!(s.try_take(&mut scan, 200 * MS), Err(MS), "not its turn");
        assert_eq!(s.try_take(&mut lookup, 201 * MS), Ok(()));
        assert_eq!(s.try_take(&mut scan, 401 * MS), Ok(()));
    }

    #[test]
    fn a_429_delays_everyone_and_gone_waiters_do_not_block() {
        let b = Budgets::new();
        let s = b.slot(7, 200 * MS, "shop", 0).unwrap();
        s.try_take(&mut Ticket::new(1, 0), 0).unwrap();
        s.throttle(7, 3_000 * MS);
        assert_eq!(s.try_take(&mut Ticket::new(2, 0), 300 * MS), Err(2_700 * MS));
        // A waiter that stopped polling (its backend exited) is skipped after a while.
        let mut gone = Ticket::new(3, 0);
        let _ = s.try_take(&mut gone, 2_900 * MS);
        let mut alive = Ticket::new(4, 500 * MS);
        assert!(s.try_take(&mut alive, 3_000 * MS).is_err(), "the earlier waiter ranks first while it polls");
        assert_eq!(s.try_take(&mut alive, 3_000 * MS + STALE_NS), Ok(()));
        let st = &b.status(3_000 * MS + STALE_NS)[0];
        assert_eq!((st.server.as_str(), st.sent, st.throttled), ("shop", 2, 1));
    }

    #[test]
    fn a_left_wait_frees_its_entry() {
        let b = Budgets::new();
        let s = b.slot(7, 200 * MS, "shop", 0).unwrap();
        s.try_take(&mut Ticket::new(1, 0), 0).unwrap();
        let mut t = Ticket::new(2, 0);
        assert!(s.try_take(&mut t, 10 * MS).is_err());
        assert_eq!(b.status(10 * MS)[0].waiting, 1);
        s.leave(&mut t);
        assert_eq!(b.status(10 * MS)[0].waiting, 0);
    }

    /// Backends starting on one token at the same moment all get the one budget: claiming is
    /// serialized, so none claims a second slot for the same key (a second slot would double
    /// the token's rate).
    #[test]
    fn simultaneous_first_uses_claim_one_slot() {
        for round in 0..200u64 {
            let b = Arc::new(Budgets::new());
            let start = Arc::new(std::sync::Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (b, start) = (b.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        b.slot(round + 1, MS, "shop", now_ns()).map(|s| s as *const Slot as usize)
                    })
                })
                .collect();
            let slots: std::collections::HashSet<_> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
            assert_eq!(slots.len(), 1, "round {round}: one slot for one key");
            assert_eq!(b.status(now_ns()).len(), 1);
        }
    }

    /// Threads standing in for backends: the sends of all of them together never come closer
    /// than the interval, whatever their number.
    #[test]
    fn concurrent_takers_never_exceed_the_rate() {
        let b = Arc::new(Budgets::new());
        let interval = 5 * MS;
        let start = now_ns();
        let handles: Vec<_> = (0..8u32)
            .map(|pid| {
                let b = b.clone();
                std::thread::spawn(move || {
                    let s = b.slot(7, interval, "shop", now_ns()).unwrap();
                    let mut times = Vec::new();
                    let mut served = 0;
                    for _ in 0..10 {
                        let mut t = Ticket::new(pid + 1, served);
                        loop {
                            match s.try_take(&mut t, now_ns()) {
                                Ok(()) => break,
                                Err(w) => std::thread::sleep(std::time::Duration::from_nanos(w.min(MS))),
                            }
                        }
                        served = now_ns();
                        times.push(served);
                    }
                    times
                })
            })
            .collect();
        let mut all: Vec<u64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all.len(), 80);
        // Grants are spaced by the interval in the budget's own time (`next` advances by it);
        // the times seen here include scheduling noise, so the check is on the whole run.
        assert!(all[79] - start >= 79 * interval, "80 sends took at least 79 intervals");
    }

    #[test]
    fn a_lock_left_by_an_exited_process_is_taken_over() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let b = Budgets::new();
        let s = b.slot(7, 200 * MS, "shop", 0).unwrap();
        s.lock.store(gone, Ordering::Relaxed);
        let started = std::time::Instant::now();
        assert_eq!(s.try_take(&mut Ticket::new(1, 0), 0), Ok(()), "the lock of a process that is gone");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(s.lock.load(Ordering::Relaxed), 0, "and released");
    }

    #[test]
    fn a_reclaimed_slot_sends_its_old_clients_to_their_budget() {
        let b = Budgets::new();
        let s = b.slot(7, 200 * MS, "shop", 0).unwrap();
        let mut t = Ticket::for_key(7, 1, 0);
        assert_eq!(s.try_take(&mut t, 0), Ok(()));
        // Waiting (polling) keeps it; a minute after the last use it may go to another key.
        assert!(s.try_take(&mut Ticket::for_key(7, 2, 0), 10 * MS).is_err());
        for k in 100..(100 + SLOTS as u64 - 1) {
            b.slot(k, 200 * MS, "other", 0).unwrap();
        }
        assert!(b.slot(99, 200 * MS, "new", 60_000 * MS).is_none(), "not while used within the minute");
        let taken = b.slot(99, 200 * MS, "new", 62_000 * MS).unwrap();
        assert!(std::ptr::eq(s, taken));
        assert_eq!(s.try_take(&mut Ticket::for_key(7, 1, 0), 62_000 * MS), Err(MOVED), "told, never paced on another budget");
    }
}

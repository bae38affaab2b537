//! Live progress of scans, as pg_stat_progress_copy shows COPY's: a table of running scans in
//! shared memory (when the library is preloaded), written by each scan as its pages arrive and
//! read by the `cyberbiz_stat_activity` view; and the text of the progress NOTICEs. Pure Rust
//! over atomics, like `pace/budget.rs`.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Scans shown at once (more run unshown).
pub const ENTRIES: usize = 128;
const TABLE_BYTES: usize = 64;
const REQUEST_BYTES: usize = 256;

/// One running scan.
#[repr(C)]
pub struct Activity {
    /// The scanning backend's pid; 0 for a free entry.
    pid: AtomicU32,
    /// Bumped on every claim, so a late release of an earlier scan frees nothing.
    generation: AtomicU32,
    table: [AtomicU8; TABLE_BYTES],
    request: [AtomicU8; REQUEST_BYTES],
    started_ms: AtomicU64,
    pages_done: AtomicU64,
    /// 0 while unknown.
    pages_total: AtomicU64,
    rows: AtomicU64,
    requests: AtomicU64,
    throttled: AtomicU64,
    wait_us: AtomicU64,
}

/// The table of running scans.
#[repr(C)]
pub struct Activities {
    entries: [Activity; ENTRIES],
}

/// What a scan reports as it goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pages_done: u64,
    pub pages_total: Option<u64>,
    pub rows: u64,
    pub requests: u64,
    pub throttled: u64,
    pub wait_us: u64,
}

/// One row of the activity view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    pub pid: u32,
    pub table: String,
    pub request: String,
    pub started_ms: u64,
    pub counts: Counts,
    /// When the scan should end, at its pace so far (unix milliseconds).
    pub finish_ms: Option<u64>,
}

/// A claimed entry: where a scan writes its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    index: usize,
    pid: u32,
    generation: u32,
}

/// Milliseconds since 1970 (wall clock: the view shows times of day).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn store_text(dst: &[AtomicU8], text: &str) {
    let mut bytes = text.as_bytes();
    if bytes.len() >= dst.len() {
        let mut cut = dst.len() - 1;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        bytes = &bytes[..cut];
    }
    for (i, b) in dst.iter().enumerate() {
        b.store(bytes.get(i).copied().unwrap_or(0), Ordering::Relaxed);
    }
}

fn load_text(src: &[AtomicU8]) -> String {
    let bytes: Vec<u8> = src.iter().map(|b| b.load(Ordering::Relaxed)).take_while(|b| *b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// When a scan that has done `done` of `total` pages in `elapsed_ms` should end.
pub fn finish_ms(started_ms: u64, now_ms: u64, done: u64, total: Option<u64>) -> Option<u64> {
    let total = total?;
    if done == 0 || total < done {
        return None;
    }
    let elapsed = now_ms.saturating_sub(started_ms);
    Some(now_ms + elapsed * (total - done) / done)
}

/// The progress NOTICE: `orders: page 40 of 200, 2,000 rows, about 32 s left`.
pub fn message(table: &str, c: &Counts, started_ms: u64, now_ms: u64) -> String {
    let rows = thousands(c.rows);
    match (c.pages_total, finish_ms(started_ms, now_ms, c.pages_done, c.pages_total)) {
        (Some(t), Some(f)) => format!("{table}: page {} of {t}, {rows} rows, about {} s left", c.pages_done, f.saturating_sub(now_ms).div_ceil(1000)),
        _ => format!("{table}: page {}, {rows} rows", c.pages_done),
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl Activity {
    const fn new() -> Activity {
        Activity {
            pid: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            table: [const { AtomicU8::new(0) }; TABLE_BYTES],
            request: [const { AtomicU8::new(0) }; REQUEST_BYTES],
            started_ms: AtomicU64::new(0),
            pages_done: AtomicU64::new(0),
            pages_total: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            wait_us: AtomicU64::new(0),
        }
    }

    fn row(&self, pid: u32, now: u64) -> ActivityRow {
        let counts = Counts {
            pages_done: self.pages_done.load(Ordering::Relaxed),
            pages_total: Some(self.pages_total.load(Ordering::Relaxed)).filter(|t| *t > 0),
            rows: self.rows.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            wait_us: self.wait_us.load(Ordering::Relaxed),
        };
        let started_ms = self.started_ms.load(Ordering::Relaxed);
        let finish_ms = finish_ms(started_ms, now, counts.pages_done, counts.pages_total);
        ActivityRow { pid, table: load_text(&self.table), request: load_text(&self.request), started_ms, counts, finish_ms }
    }
}

impl Activities {
    pub const fn new() -> Activities {
        Activities { entries: [const { Activity::new() }; ENTRIES] }
    }

    /// Claims an entry for a scan of `table` by `pid`; None when all are taken. `alive(pid)`
    /// says whether a process still exists: entries of backends gone are taken over.
    pub fn claim(&self, pid: u32, table: &str, request: &str, now_ms: u64, alive: &dyn Fn(u32) -> bool) -> Option<Claim> {
        for (index, e) in self.entries.iter().enumerate() {
            let cur = e.pid.load(Ordering::Relaxed);
            if (cur == 0 || !alive(cur)) && e.pid.compare_exchange(cur, pid, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                let generation = e.generation.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
                store_text(&e.table, table);
                store_text(&e.request, request);
                e.started_ms.store(now_ms, Ordering::Relaxed);
                self.update(Claim { index, pid, generation }, &Counts::default());
                return Some(Claim { index, pid, generation });
            }
        }
        None
    }

    /// Publishes a scan's counts.
    pub fn update(&self, c: Claim, counts: &Counts) {
        let e = &self.entries[c.index];
        if e.pid.load(Ordering::Relaxed) != c.pid || e.generation.load(Ordering::Relaxed) != c.generation {
            return;
        }
        e.pages_done.store(counts.pages_done, Ordering::Relaxed);
        e.pages_total.store(counts.pages_total.unwrap_or(0), Ordering::Relaxed);
        e.rows.store(counts.rows, Ordering::Relaxed);
        e.requests.store(counts.requests, Ordering::Relaxed);
        e.throttled.store(counts.throttled, Ordering::Relaxed);
        e.wait_us.store(counts.wait_us, Ordering::Relaxed);
    }

    /// The scan ended: its entry is free again.
    pub fn release(&self, c: Claim) {
        let e = &self.entries[c.index];
        if e.generation.load(Ordering::Relaxed) == c.generation {
            let _ = e.pid.compare_exchange(c.pid, 0, Ordering::Release, Ordering::Relaxed);
        }
    }

    /// The running scans of live backends.
    pub fn rows(&self, now_ms: u64, alive: &dyn Fn(u32) -> bool) -> Vec<ActivityRow> {
        self.entries
            .iter()
            .filter_map(|e| {
                let pid = e.pid.load(Ordering::Acquire);
                (pid != 0 && alive(pid)).then(|| e.row(pid, now_ms))
            })
            .collect()
    }
}

impl Default for Activities {
    fn default() -> Self {
        Activities::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_show_while_they_run() {
        let a = Activities::new();
        let alive = |_: u32| true;
        let c = a.claim(42, "orders", "GET /v1/orders?per_page=50", 1_000, &alive).unwrap();
        a.update(c, &Counts { pages_done: 40, pages_total: Some(200), rows: 2_000, requests: 41, throttled: 1, wait_us: 8_000_000 });
        let rows = a.rows(9_000, &alive);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].pid, rows[0].table.as_str(), rows[0].counts.rows), (42, "orders", 2_000));
        assert_eq!(rows[0].finish_ms, Some(9_000 + 8_000 * 160 / 40));
        a.release(c);
        assert!(a.rows(9_000, &alive).is_empty());
        a.update(c, &Counts::default());
        assert!(a.rows(9_000, &alive).is_empty(), "a released claim writes nothing");
    }

    #[test]
    fn entries_of_backends_gone_are_reused_and_hidden() {
        let a = Activities::new();
        let c = a.claim(7, "customers", "GET /v1/customers", 0, &|_| true).unwrap();
        assert!(a.rows(0, &|pid| pid != 7).is_empty(), "pid 7 is gone");
        let d = a.claim(8, "orders", "GET /v1/orders", 0, &|pid| pid != 7).unwrap();
        assert_eq!(d.index, c.index);
        a.release(c);
        assert_eq!(a.rows(0, &|_| true).len(), 1, "the old claim's release frees nothing of the new scan");
    }

    #[test]
    fn notices_say_where_the_scan_is() {
        let c = Counts { pages_done: 40, pages_total: Some(200), rows: 2_000, ..Counts::default() };
        assert_eq!(message("orders", &c, 0, 8_000), "orders: page 40 of 200, 2,000 rows, about 32 s left");
        let c = Counts { pages_done: 3, rows: 150, ..Counts::default() };
        assert_eq!(message("blogs", &c, 0, 1_000), "blogs: page 3, 150 rows");
        assert_eq!(thousands(1_234_567), "1,234,567");
        let long = "團".repeat(100);
        let a = Activities::new();
        let c = a.claim(1, &long, &long, 0, &|_| true).unwrap();
        let row = &a.rows(0, &|_| true)[0];
        assert!(row.table.len() < TABLE_BYTES && long.starts_with(&row.table), "cut at a character boundary");
        a.release(c);
    }
}

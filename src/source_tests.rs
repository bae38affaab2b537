//! Checks on the source itself, run with the unit tests: the rules of `unsafe` code and of
//! callbacks that the compiler cannot enforce.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `path:line: what` for every code line of `src/` that `check(lines, i)` finds fault with.
fn violations(check: impl Fn(&[&str], usize) -> Option<&'static str>) -> Vec<String> {
    violations_in(|_| true, check)
}

/// `violations`, in the files of `src/` that `which` picks.
fn violations_in(which: impl Fn(&Path) -> bool, check: impl Fn(&[&str], usize) -> Option<&'static str>) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    files.sort();
    // This file names the patterns it looks for.
    files.retain(|p| !p.ends_with("source_tests.rs") && which(p));
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read a source file");
        let lines: Vec<&str> = text.lines().collect();
        for i in 0..lines.len() {
            if lines[i].trim_start().starts_with("//") {
                continue;
            }
            if let Some(what) = check(&lines, i) {
                out.push(format!("{}:{}: {what}", path.display(), i + 1));
            }
        }
    }
    out
}

/// Whether one of the `n` lines before line `i` (and `i` itself) contains `needle`.
fn near(lines: &[&str], i: usize, n: usize, needle: &str) -> bool {
    lines[i.saturating_sub(n)..=i].iter().any(|l| l.contains(needle))
}

/// Every `unsafe {}` block says why it is sound in a `// SAFETY:` comment at most three lines
/// above it, and every `unsafe fn` documents its contract in a `# Safety` section.
#[test]
fn every_unsafe_block_has_a_safety_line() {
    let missing = violations(|lines, i| match lines[i] {
        l if l.contains("unsafe {") && !near(lines, i, 3, "SAFETY:") => Some("unsafe block without a SAFETY line"),
        l if l.contains("unsafe fn ") && !near(lines, i, 12, "# Safety") => Some("unsafe fn without a # Safety section"),
        _ => None,
    });
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// Postgres calls every `extern "C-unwind"` function of ours: each is `#[pg_guard]`ed, so a
/// Rust panic becomes an ERROR instead of unwinding into C.
#[test]
fn every_callback_is_guarded() {
    let missing =
        violations(|lines, i| (lines[i].contains("extern \"C-unwind\" fn ") && !near(lines, i, 2, "#[pg_guard]")).then_some("callback without #[pg_guard]"));
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The layer rule: Postgres is reached only from `src/fdw/` (and `lib.rs`, which registers it,
/// and the pg_tests); every other module is pure Rust that plain unit tests cover, and never
/// imports from `src/fdw/`.
#[test]
fn only_fdw_talks_to_postgres() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed = |p: &Path| p.starts_with(src.join("fdw")) || p.starts_with(src.join("pg_tests")) || p == src.join("lib.rs");
    let found = violations_in(
        |p| !allowed(p),
        |lines, i| ["pgrx", "pg_sys", "crate::fdw"].iter().any(|n| lines[i].contains(n)).then_some("names pgrx, pg_sys or crate::fdw"),
    );
    assert!(found.is_empty(), "pure modules reaching Postgres or src/fdw/:\n{}", found.join("\n"));
}

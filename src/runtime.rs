//! The backend's async runtime and what makes it safe inside Postgres: helper threads start
//! with every signal blocked (Postgres's signals must reach the main thread), and every wait
//! polls for interrupts so that statement_timeout and pg_cancel_backend take effect.

use crate::error::FdwError;
use once_cell::sync::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

static RUNTIME: OnceCell<tokio::runtime::Runtime> = OnceCell::new();

/// Every signal, as a set.
fn all_signals() -> libc::sigset_t {
    // SAFETY: sigfillset initialises the zeroed set it is given.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        all
    }
}

/// Blocks every signal in the calling thread: Postgres's signals (SIGINT, SIGTERM, SIGUSR1,
/// ...) must reach the backend's main thread, never a helper thread.
fn block_signals() {
    let all = all_signals();
    // SAFETY: changes only the calling thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut()) };
}

/// Runs `f` (which creates threads) with every signal blocked in this thread, so the threads it
/// creates start with them blocked (threads inherit their creator's mask); then restores the
/// mask. Postgres's signals must reach the backend's main thread, never a helper.
pub fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    let all = all_signals();
    // SAFETY: zeroed is a valid sigset_t to receive the old mask.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: changes only this thread's mask, restored below.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) };
    let r = f();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    r
}

/// The backend's runtime: one worker thread runs request tasks while the main thread decodes
/// rows; only the main thread ever touches Postgres, and only it receives signals (runtime
/// threads, worker or blocking pool, are created with every signal blocked and block them again
/// as they start).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        let build =
            || tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("cyberbiz-http").on_thread_start(block_signals).enable_all().build();
        with_signals_blocked(build).expect("tokio runtime")
    })
}

/// Runs `fut` on the backend's runtime, checking `interrupted` every 50 ms so that
/// statement_timeout and pg_cancel_backend take effect while we wait. On an interrupt the
/// future is dropped and `Err(Interrupted)` returned: the caller lets Postgres process the
/// interrupt and, if it was a harmless one, waits again (so `fut` must be cancel-safe).
pub fn block_on<T>(fut: impl Future<Output = Result<T, FdwError>>, interrupted: &dyn Fn() -> bool) -> Result<T, FdwError> {
    let mut fut = std::pin::pin!(fut);
    poll_until(fut.as_mut(), interrupted)
}

/// Polls `fut` on the backend's runtime until it is done, or until `interrupted` (checked every
/// 50 ms) says an interrupt is pending: then `Err(Interrupted)`, and `fut` stays as it was, to
/// be polled again after Postgres has processed the interrupt. Nothing is dropped or sent anew.
pub fn poll_until<T, F: Future<Output = Result<T, FdwError>>>(mut fut: Pin<&mut F>, interrupted: &dyn Fn() -> bool) -> Result<T, FdwError> {
    runtime().block_on(async {
        let period = Duration::from_millis(50);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                r = fut.as_mut() => return r,
                _ = tick.tick() => if interrupted() { return Err(FdwError::Interrupted) },
            }
        }
    })
}

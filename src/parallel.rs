//! Work split across two cores: whether this process has two, and two closures run at once.

use std::sync::OnceLock;

/// Whether this process may run on two cores or more (asked once).
pub(crate) fn two_cores() -> bool {
    static TWO: OnceLock<bool> = OnceLock::new();
    *TWO.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// Run `here` on this thread and `there` on another, at the same time, and return both
/// results. A panic on the other thread goes on here, as if `there` had run here.
pub(crate) fn join<A, B: Send>(
    here: impl FnOnce() -> A,
    there: impl FnOnce() -> B + Send,
) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(there);
        let a = here();
        match other.join() {
            Ok(b) => (a, b),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

//! Signals: a Ctrl-C flag, and signalling process groups.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM: [`interrupted`] turns true instead of the process dying.
pub fn catch_interrupts() {
    let handler = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Whether SIGINT or SIGTERM arrived since [`catch_interrupts`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Send `signal` to the process group `pgid` (a command spawned with
/// `CommandExt::process_group(0)` leads a group whose id is its pid).
pub fn signal_group(pgid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid only sends a signal; no memory is involved.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), signal);
    }
}

/// SIGINT, for [`signal_group`].
pub const SIGINT: libc::c_int = libc::SIGINT;
/// SIGKILL, for [`signal_group`].
pub const SIGKILL: libc::c_int = libc::SIGKILL;

/// Whether this process runs as root (attaching uprobes and loading BPF programs need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

//! Signals (a flag for the ones that ask us to stop, signalling processes and groups),
//! waiting on file descriptors, and watching another process's exit.
// The recorder alone uses only `wait_readable`; the rest serves the command and harness.
#![cfg_attr(not(feature = "harness"), allow(dead_code))]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

/// The last of SIGINT, SIGTERM or SIGHUP that arrived (0: none).
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
/// Whether that signal was sent by a process (kill(2)), not by the terminal or kernel.
static FROM_PROCESS: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo for the signal.
    let code = unsafe { (*info).si_code };
    // SI_USER, SI_QUEUE, SI_TKILL (kill, sigqueue, tgkill) are <= 0; SI_KERNEL (a terminal's
    // Ctrl-C, which reaches its whole foreground group) is positive.
    FROM_PROCESS.store(code <= 0, Ordering::SeqCst);
    INTERRUPTED.store(sig, Ordering::SeqCst);
}

/// Catch SIGINT, SIGTERM and SIGHUP: [`interrupted`] turns true instead of the process
/// dying, and system calls they interrupt fail with EINTR rather than restart.
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler only
        // stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_interrupt
                as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as libc::sighandler_t;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Whether SIGINT, SIGTERM or SIGHUP arrived since [`catch_interrupts`].
pub fn interrupted() -> bool {
    interrupt_signal().is_some()
}

/// Which of SIGINT, SIGTERM or SIGHUP arrived last, if any did.
pub fn interrupt_signal() -> Option<i32> {
    Some(INTERRUPTED.load(Ordering::SeqCst)).filter(|&s| s != 0)
}

/// Whether that signal came from another process's kill(2) (so processes in our group did
/// not get it too), not from the terminal.
pub fn interrupt_from_process() -> bool {
    FROM_PROCESS.load(Ordering::SeqCst)
}

/// Send `signal` to process `pid`.
pub fn signal_process(pid: u32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill(2) only sends a signal; no memory is involved.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Wait up to `timeout` for `fd` to be readable. `Ok(false)`: the time ran out or a signal
/// arrived.
pub fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `p` is one valid pollfd that outlives the call.
    match unsafe { libc::poll(&mut p, 1, ms) } {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// A process watched for its exit through a pidfd (not fooled by pid reuse).
#[derive(Debug)]
pub struct PidWatch {
    fd: OwnedFd,
}

impl PidWatch {
    /// Watch process `pid`; fails if it does not exist.
    pub fn new(pid: u32) -> io::Result<Self> {
        // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        Ok(PidWatch { fd })
    }

    /// Whether the process has exited.
    pub fn exited(&self) -> bool {
        wait_readable(self.fd.as_raw_fd(), Duration::ZERO).unwrap_or(false)
    }
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

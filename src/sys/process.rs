//! Starting a command that waits, between fork and exec, until the tracer has attached to
//! its pid; and a Ctrl-C flag.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};

/// The write end of the pipe a gated child waits on.
#[derive(Debug)]
pub struct Gate(Option<OwnedFd>);

impl Gate {
    /// Let the child exec.
    pub fn open(mut self) -> io::Result<()> {
        let fd = self.0.take().expect("gate opened once");
        // SAFETY: writes one byte from a live buffer to a pipe we own.
        let n = unsafe { libc::write(fd.as_raw_fd(), b"g\n".as_ptr().cast(), 2) };
        if n == 2 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Spawn `program args...` so that it stops before its exec until [`Gate::open`] (or until
/// the gate is dropped). It runs first as `/bin/sh`, which waits on the gate pipe (fd 3) and
/// then execs the program: the pid a tracer attaches to is the program's.
pub fn spawn_gated(program: &str, args: &[String]) -> io::Result<(Child, Gate)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors nobody else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let rfd = read.as_raw_fd();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("read -r _ <&3; exec 3<&-; exec \"$0\" \"$@\"")
        .arg(program)
        .args(args);
    // SAFETY: runs in the forked child before exec and only calls dup2(2), which is
    // async-signal-safe; the new fd 3 does not inherit O_CLOEXEC.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(rfd, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(read);
    Ok((child, Gate(Some(write))))
}

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

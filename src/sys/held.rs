//! A command held right after its `exec` (as a ptrace tracee), so that a tracer can attach
//! to its pid before any of its code runs, optionally run up to its entry point (after the
//! dynamic loader has mapped, relocated and write-protected what it loads at startup), and
//! then let go of it.

use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// A child stopped by ptrace; it is killed if dropped without [`Held::release`].
#[derive(Debug)]
pub struct Held {
    child: Option<Child>,
    pid: libc::pid_t,
}

fn wait_stop(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes one int to a live local.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn ended(status: libc::c_int) -> Option<String> {
    if libc::WIFEXITED(status) {
        Some(format!("exited with status {}", libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(format!("killed by signal {}", libc::WTERMSIG(status)))
    } else {
        None
    }
}

fn ptrace(req: libc::c_uint, pid: libc::pid_t, data: usize) -> io::Result<()> {
    // SAFETY: the requests used here (CONT, DETACH) take no pointer; `data` is a signal
    // number.
    let r = unsafe { libc::ptrace(req, pid, std::ptr::null_mut::<libc::c_void>(), data) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Spawn `cmd` stopped right after its `exec`: it has mapped the program (and its ELF
/// interpreter) but run nothing. Its stdio are whatever `cmd` says.
pub fn spawn_held(mut cmd: Command) -> io::Result<Held> {
    // SAFETY: runs in the forked child before exec; prctl(PR_SET_PDEATHSIG) and
    // ptrace(PTRACE_TRACEME) are plain system calls, safe there.
    unsafe {
        cmd.pre_exec(|| {
            // A command whose tracer dies (even by SIGKILL) is told to end, not left
            // running untraced under init.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0usize, 0usize) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut held = Held {
        child: Some(child),
        pid,
    };
    let status = wait_stop(pid)?;
    if let Some(how) = ended(status) {
        held.child = None;
        return Err(io::Error::other(format!(
            "the command {how} before running"
        )));
    }
    Ok(held)
}

impl Held {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Run it up to its entry point (`AT_ENTRY`) and stop there: the dynamic loader has
    /// then mapped the program and the libraries it needs, relocated them and made their
    /// RELRO read-only, and no code of the program has run. False when this host cannot
    /// (a breakpoint here is written for x86 only).
    pub fn run_to_entry(&mut self) -> io::Result<bool> {
        if !cfg!(target_arch = "x86_64") {
            return Ok(false);
        }
        let entry = entry_point(self.pid)?;
        let mem = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/{}/mem", self.pid))?;
        let mut orig = [0u8; 1];
        mem.read_exact_at(&mut orig, entry)?;
        mem.write_all_at(&[0xcc], entry)?;
        let mut signal = 0;
        loop {
            ptrace(libc::PTRACE_CONT, self.pid, signal)?;
            let status = wait_stop(self.pid)?;
            if let Some(how) = ended(status) {
                self.child = None;
                return Err(io::Error::other(format!(
                    "the command {how} before reaching its entry point"
                )));
            }
            let sig = libc::WSTOPSIG(status);
            if sig == libc::SIGTRAP && self.pc()? == entry + 1 {
                break;
            }
            // Anything else the loader meets is the program's: deliver it.
            signal = if sig == libc::SIGTRAP {
                0
            } else {
                sig as usize
            };
        }
        mem.write_all_at(&orig, entry)?;
        self.set_pc(entry)?;
        Ok(true)
    }

    #[cfg(target_arch = "x86_64")]
    fn regs(&self) -> io::Result<libc::user_regs_struct> {
        // SAFETY: user_regs_struct is plain integers; all-zero is a valid value.
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        // SAFETY: PTRACE_GETREGS writes one user_regs_struct to the pointer given.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_GETREGS,
                self.pid,
                0usize,
                &mut regs as *mut libc::user_regs_struct,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(regs)
    }

    #[cfg(target_arch = "x86_64")]
    fn pc(&self) -> io::Result<u64> {
        Ok(self.regs()?.rip)
    }

    #[cfg(target_arch = "x86_64")]
    fn set_pc(&self, pc: u64) -> io::Result<()> {
        let mut regs = self.regs()?;
        regs.rip = pc;
        // SAFETY: PTRACE_SETREGS reads one user_regs_struct from the pointer given.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_SETREGS,
                self.pid,
                0usize,
                &regs as *const libc::user_regs_struct,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn pc(&self) -> io::Result<u64> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn set_pc(&self, _: u64) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// Let it run, no longer traced.
    pub fn release(mut self) -> io::Result<Child> {
        ptrace(libc::PTRACE_DETACH, self.pid, 0)?;
        Ok(self.child.take().expect("held until released"))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // A command that was never released (attaching failed) must not run untraced.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `AT_ENTRY` of process `pid`, from its auxiliary vector (32-bit words for a 32-bit
/// process).
fn entry_point(pid: libc::pid_t) -> io::Result<u64> {
    let mut head = [0u8; 5];
    std::fs::File::open(format!("/proc/{pid}/exe"))?.read_exact(&mut head)?;
    let wide = head[4] == 2;
    let auxv = std::fs::read(format!("/proc/{pid}/auxv"))?;
    let w = if wide { 8 } else { 4 };
    let word = |b: &[u8]| {
        if wide {
            u64::from_ne_bytes(b.try_into().expect("8 bytes"))
        } else {
            u64::from(u32::from_ne_bytes(b.try_into().expect("4 bytes")))
        }
    };
    auxv.chunks_exact(2 * w)
        .map(|p| (word(&p[..w]), word(&p[w..])))
        .find(|(k, _)| *k == libc::AT_ENTRY)
        .map(|(_, v)| v)
        .ok_or_else(|| io::Error::other(format!("process {pid} has no AT_ENTRY")))
}

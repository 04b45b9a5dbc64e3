//! Running a fixture under a tracer: start it waiting (`--wait`), let the tracer attach,
//! release it, and collect its output, with a time limit.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::gen::manifest::WAIT_ARG;
use crate::gen::Fixture;

/// A fixture process that has not fired a probe yet: blocked on its `--wait` read, or held
/// right after its `exec` (see [`crate::sys::held`]).
#[derive(Debug)]
pub struct Waiting {
    child: Option<Child>,
    held: Option<crate::sys::held::Held>,
    pid: u32,
}

impl Waiting {
    /// Start the fixture's binary (relative to `dir`) with `--wait`.
    pub fn start(dir: &Path, fx: &Fixture) -> Result<Self> {
        let bin = dir.join(&fx.binary);
        let child = Command::new(&bin)
            .arg(WAIT_ARG)
            .args(&fx.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| Error::Io { path: bin, source })?;
        let w = Waiting {
            pid: child.id(),
            child: Some(child),
            held: None,
        };
        w.until_blocked();
        Ok(w)
    }

    /// Wait (up to 10 s) until the fixture blocks on its `--wait` read. A tracer attaching
    /// earlier attaches to a process whose loader may still be running: a different order
    /// (the kernel raises semaphores that share a page with RELRO in RELRO's mapping while it
    /// is still writable) from the one this start is for.
    fn until_blocked(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let wchan =
                std::fs::read_to_string(format!("/proc/{}/wchan", self.pid)).unwrap_or_default();
            if wchan.contains("pipe_read") || wchan.contains("pipe_wait") {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Start the fixture's binary held right after its `exec`, before its dynamic loader
    /// has run: the order of `usdtkit trace -- COMMAND`, where the probes are attached
    /// before the process maps anything else.
    pub fn start_held(dir: &Path, fx: &Fixture) -> Result<Self> {
        let bin = dir.join(&fx.binary);
        let mut cmd = Command::new(&bin);
        cmd.args(&fx.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let held =
            crate::sys::held::spawn_held(cmd).map_err(|source| Error::Io { path: bin, source })?;
        Ok(Waiting {
            pid: held.pid(),
            child: None,
            held: Some(held),
        })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The held process, when started with [`Waiting::start_held`] and not released.
    pub fn held(&mut self) -> Option<&mut crate::sys::held::Held> {
        self.held.as_mut()
    }

    /// Let it run; wait at most `limit` for it to exit (then kill it). Calls `tick` about
    /// every 20 ms while waiting. Returns the exit status and stdout.
    pub fn release(
        mut self,
        limit: Duration,
        mut tick: impl FnMut(),
    ) -> Result<(ExitStatus, String)> {
        let fail = |e: std::io::Error| Error::Invalid(format!("fixture process: {e}"));
        let mut child = match self.held.take() {
            Some(h) => h.release().map_err(fail)?,
            None => {
                // Still owned by `self` (killed on drop) until the byte is written.
                let c = self.child.as_mut().expect("a started fixture");
                let mut stdin = c.stdin.take().expect("piped");
                stdin.write_all(b"x").map_err(fail)?;
                self.child.take().expect("a started fixture")
            }
        };
        let mut stdout = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(st) = child.try_wait().map_err(fail)? {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Invalid(format!(
                    "fixture still running after {} s: killed",
                    limit.as_secs()
                )));
            }
            tick();
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = reader.join().unwrap_or_default();
        Ok((status, out))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        // A fixture left waiting (the tracer failed to attach) must not outlive the check;
        // a held one is killed by its own drop.
        if let Some(c) = self.child.as_mut() {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Run a command to completion with a time limit (killed past it), capturing its output.
pub fn output_within(mut cmd: Command, limit: Duration) -> Result<(ExitStatus, String, String)> {
    let shown = format!("{cmd:?}");
    let fail = |e: std::io::Error| Error::Command {
        command: shown.clone(),
        detail: e.to_string(),
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail)?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(fail)? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Command {
                command: shown,
                detail: format!("still running after {} s: killed", limit.as_secs()),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok((
        status,
        t_out.join().unwrap_or_default(),
        t_err.join().unwrap_or_default(),
    ))
}

/// A peer tool running in its own process group, its stdout read line by line in the
/// background and its stderr collected: so that a peer that hangs, or leaves children behind,
/// is stopped as a whole.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Peer {
    /// Start `cmd` (stdin closed, stdout and stderr captured, a new process group).
    pub fn start(mut cmd: Command) -> Result<Self> {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let shown = format!("{:?}", cmd.get_program());
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::Command {
                command: shown,
                detail: e.to_string(),
            })?;
        let mut err = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let (tx, lines) = std::sync::mpsc::channel();
        let out = std::io::BufReader::new(child.stdout.take().expect("piped"));
        std::thread::spawn(move || {
            for line in out.lines().map_while(std::result::Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Peer {
            child,
            lines,
            stderr: Some(stderr),
        })
    }

    /// Wait up to `limit` for a stdout line that satisfies `ready`; false when the peer
    /// exited or the time ran out first.
    pub fn wait_for(&mut self, limit: Duration, ready: impl Fn(&str) -> bool) -> bool {
        self.wait_collecting(limit, ready).0
    }

    /// [`Peer::wait_for`], also returning the lines read before the ready one.
    pub fn wait_collecting(
        &mut self,
        limit: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> (bool, Vec<String>) {
        let deadline = Instant::now() + limit;
        let mut before = Vec::new();
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(l) if ready(&l) => return (true, before),
                Ok(l) => before.push(l),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => return (false, before),
            }
        }
        (false, before)
    }

    /// Whether its stdout is closed and drained.
    fn lines_closed(&self) -> bool {
        matches!(
            self.lines.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Disconnected)
        )
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kill the whole group now; returns its stderr.
    pub fn kill(self) -> String {
        self.kill_reporting().0
    }

    /// Kill the whole group now; returns its stderr and, when it had already exited by
    /// itself, how ("exited with status 1", "killed by signal 6").
    pub fn kill_reporting(mut self) -> (String, Option<String>) {
        use crate::sys::process::{signal_group, SIGKILL};
        // A peer that closed its output is usually exiting: give it a moment, so that its
        // own exit status is what is reported.
        let soon = Instant::now() + Duration::from_millis(500);
        let ended = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break Some(st),
                _ if Instant::now() < soon && self.lines_closed() => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => break None,
            }
        };
        signal_group(self.child.id(), SIGKILL);
        let _ = self.child.wait();
        let err = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        (err, ended.map(|st| st.to_string()))
    }

    /// Ask the group to stop (SIGINT), give it up to 10 s, then kill it; returns the stdout
    /// lines not read yet.
    pub fn stop(self) -> Vec<String> {
        self.stop_reporting().0
    }

    /// [`Peer::stop`], also telling whether the peer had already failed before it was asked
    /// to stop (a crash, or an error exit mid-run): then how, with its last stderr line.
    pub fn stop_reporting(mut self) -> (Vec<String>, Option<String>) {
        use crate::sys::process::{signal_group, SIGINT, SIGKILL};
        // A peer may end by itself once the traced process exits; only an unsuccessful end
        // before it was asked to stop is a failure.
        let early = match self.child.try_wait() {
            Ok(Some(st)) if !st.success() => Some(st),
            _ => None,
        };
        signal_group(self.child.id(), SIGINT);
        let stop = Instant::now() + Duration::from_secs(10);
        while Instant::now() < stop && !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group(self.child.id(), SIGKILL);
        let _ = self.child.wait();
        // The reader thread ends at end of file; collect what it read.
        let mut out = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            out.push(l);
        }
        let early = early.map(|st| {
            let err = self
                .stderr
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default();
            let last = err
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.contains("RLIMIT_MEMLOCK"))
                .unwrap_or("no words on stderr")
                .to_string();
            format!("exited with {st}: {last}")
        });
        (out, early)
    }
}

/// A path in the temporary directory unique to this process and call (runs of the same
/// adapter may go on at once): `usdtkit-PID-N-NAME` (NAME last: tools read the extension).
pub fn scratch_path(name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "usdtkit-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A temporary file, removed on drop.
#[derive(Debug)]
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    /// Write `data` to a new scratch file named after `name`.
    pub fn new(name: &str, data: &[u8]) -> Result<Scratch> {
        let path = scratch_path(name);
        std::fs::write(&path, data).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

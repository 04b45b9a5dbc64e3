//! Running a fixture under a tracer: start it waiting (`--wait`), let the tracer attach,
//! release it, and collect its output, with a time limit.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::gen::manifest::WAIT_ARG;
use crate::gen::Fixture;

/// A fixture process blocked on its `--wait` read.
#[derive(Debug)]
pub struct Waiting {
    child: Child,
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
        Ok(Waiting { child })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Let it run; wait at most `limit` for it to exit (then kill it). Calls `tick` about
    /// every 20 ms while waiting. Returns the exit status and stdout.
    pub fn release(
        mut self,
        limit: Duration,
        mut tick: impl FnMut(),
    ) -> Result<(ExitStatus, String)> {
        let fail = |e: std::io::Error| Error::Invalid(format!("fixture process: {e}"));
        let mut stdin = self.child.stdin.take().expect("piped");
        stdin.write_all(b"x").map_err(fail)?;
        drop(stdin);
        let mut stdout = self.child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(st) = self.child.try_wait().map_err(fail)? {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
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
        // A fixture left waiting (the tracer failed to attach) must not outlive the check.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
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

/// `provider:name` of every probe the fixture expects hits of, sorted.
pub fn probe_keys(fx: &Fixture) -> Vec<String> {
    let mut v: Vec<String> = fx
        .hits
        .iter()
        .map(|h| format!("{}:{}", h.provider, h.name))
        .collect();
    v.sort();
    v.dedup();
    v
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
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(l) if ready(&l) => return true,
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Kill the whole group now; returns its stderr.
    pub fn kill(mut self) -> String {
        use crate::sys::process::{signal_group, SIGKILL};
        signal_group(self.child.id(), SIGKILL);
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    /// Ask the group to stop (SIGINT), give it up to 10 s, then kill it; returns the stdout
    /// lines not read yet.
    pub fn stop(mut self) -> Vec<String> {
        use crate::sys::process::{signal_group, SIGINT, SIGKILL};
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
        out
    }
}

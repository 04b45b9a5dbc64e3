//! Implementations outside usdtkit, through a line protocol (bcc's adapter uses it too).
//!
//! usdtkit starts the fixture held (`--wait`), then runs
//! `COMMAND --pid PID --probes JSON`, where JSON lists the probes to attach as
//! `[[object_path, provider, name, argument_count], ...]`. The command attaches to those
//! probes for that pid, prints `READY` on a line of its own, then one JSON object per hit:
//! `{"probe": "provider:name", "args": [{"int": N} | {"float": X} | {"error": "why"}, ...]}`
//! with integers already interpreted per the note's size and sign. usdtkit releases the
//! fixture, waits for it to exit, sends SIGINT, and reads the command's output to its end.
//! Before `READY`, a line `REFUSED provider:name WORDS` refuses that probe alone (the
//! others are attached). A command that exits before `READY` refuses every probe of the
//! fixture, with the last line it wrote to stderr as the reason. `COMMAND --version` prints its version. When a command
//! refuses a fixture as a whole, the harness runs it again on fewer probes until it has
//! found which probes it refuses (see [`crate::check::isolate`]).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::bpftrace::as_value;
use super::gdb::observed;
use super::{version_of, Implementation};
use crate::check::compare::{Observed, ObservedHit, Run};
use crate::check::run::{Peer, Waiting};
use crate::check::select::Selection;
use crate::error::Result;
use crate::gen::Fixture;

/// An external implementation: `ext:COMMAND`.
#[derive(Debug, Clone)]
pub struct External {
    command: String,
}

impl External {
    /// The implementation run as `command`.
    pub fn new(command: &str) -> Self {
        External {
            command: command.into(),
        }
    }
}

impl Implementation for External {
    fn name(&self) -> String {
        format!("ext:{}", self.command)
    }

    fn detect(&self) -> std::result::Result<String, String> {
        version_of(&self.command, "--version")
    }

    fn run(&self, dir: &Path, fx: &Fixture, sel: &Selection, limit: Duration) -> Result<Run> {
        run_protocol(dir, fx, sel, limit, false, |pid, probes| {
            let mut c = Command::new(&self.command);
            c.args(["--pid", &pid.to_string(), "--probes", probes]);
            c
        })
    }
}

/// The probes of `sel` as the protocol lists them.
pub(crate) fn probes_json(sel: &Selection) -> String {
    let probes: Vec<serde_json::Value> = sel
        .probes
        .iter()
        .map(|w| {
            let p = &w.probe;
            serde_json::json!([p.object, p.provider, p.name, p.args.len()])
        })
        .collect();
    serde_json::to_string(&probes).expect("json")
}

/// Run a command speaking the protocol on one fixture. With `raw_u64`, integers are the
/// argument's raw 64 bits and are interpreted here per the note's signedness.
/// One hit line of the protocol (`{"probe": "provider:name", "args": [...]}`), or `None`
/// for a line that is not one. `signs(provider, name)` gives the signedness of each argument
/// (for peers that print raw 64-bit values).
pub fn parse_hit(
    line: &str,
    raw_u64: bool,
    signs: &dyn Fn(&str, &str) -> Vec<bool>,
) -> Option<ObservedHit> {
    let v = serde_json::from_str::<serde_json::Value>(line).ok()?;
    let key = v["probe"].as_str().unwrap_or_default();
    let (p, n) = key.split_once(':').unwrap_or((key, ""));
    let signs = signs(p, n);
    let args = v["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .enumerate()
                .map(
                    |(i, x)| match (raw_u64, x.get("int").and_then(|v| v.as_u64())) {
                        (true, Some(raw)) => as_value(raw, signs.get(i).copied().unwrap_or(false)),
                        _ => observed(x),
                    },
                )
                .collect::<Vec<Observed>>()
        })
        .unwrap_or_default();
    Some(ObservedHit {
        provider: p.into(),
        name: n.into(),
        pc: None,
        args,
    })
}

pub(crate) fn run_protocol(
    dir: &Path,
    fx: &Fixture,
    sel: &Selection,
    limit: Duration,
    raw_u64: bool,
    command: impl FnOnce(u32, &str) -> Command,
) -> Result<Run> {
    let probes = probes_json(sel);
    let proc_ = Waiting::start(dir, fx)?;
    let mut peer = Peer::start(command(proc_.pid(), &probes))?;
    let mut run = Run::default();
    let (ready, before) = peer.wait_collecting(limit, |l| l.trim() == "READY");
    for l in before {
        if let Some((key, why)) = l.strip_prefix("REFUSED ").and_then(|r| r.split_once(' ')) {
            run.refused.insert(key.to_string(), why.trim().to_string());
        }
    }
    if !ready {
        let err = peer.kill();
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("exited without attaching")
            .trim()
            .to_string();
        run.refused.insert("*".into(), last);
        return Ok(run);
    }
    let (_, stdout) = proc_.release(limit, || {})?;
    run.stdout = stdout;
    std::thread::sleep(Duration::from_millis(200));
    let (lines, failed) = peer.stop_reporting();
    run.failure = failed;
    for line in lines {
        let signs = |p: &str, n: &str| -> Vec<bool> {
            sel.get(p, n)
                .map(|w| w.probe.args.iter().map(|a| a.signed).collect())
                .unwrap_or_default()
        };
        if let Some(hit) = parse_hit(&line, raw_u64, &signs) {
            run.hits.push(hit);
        }
    }
    Ok(run)
}

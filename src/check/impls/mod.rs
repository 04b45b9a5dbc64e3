//! USDT implementations the harness can run, one file each. Adding one: write a type that
//! implements [`Implementation`] (tell whether the tool is installed and its version; run one
//! fixture and return what it observed) and list it in [`all`]. Tools outside usdtkit plug in
//! without code through the external-command protocol ([`external`]).

pub mod bcc;
pub mod bpftrace;
pub mod external;
pub mod gdb;
pub mod libbpf;
pub mod perf;
pub mod qemu;
pub mod usdtkit;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::compare::Run;
use super::env::Env;
use super::select::{Granularity, ProbeShape, Selection, Unit};
use crate::error::Result;
use crate::gen::Fixture;

/// One USDT implementation. The harness runs several at once, from several threads.
pub trait Implementation: Sync {
    /// Its name on the command line (`bpftrace`, `bpftrace@debian13`).
    fn name(&self) -> String;
    /// Its version when it can run here, or why it cannot.
    fn detect(&self) -> std::result::Result<String, String>;
    /// Its column in reports, given the version [`Implementation::detect`] found (or the
    /// reason it did not): the tool and its version (`bpftrace 0.23`), so that each version
    /// is a column of its own.
    fn column(&self, version: std::result::Result<&str, &str>) -> String {
        let _ = version;
        self.name()
    }
    /// Whether it runs `fx`: by default, the fixtures that run on this machine.
    fn runs(&self, fx: &Fixture) -> bool {
        fx.runnable
    }
    /// A machine-wide resource its runs must not share with runs of any other
    /// implementation naming the same one (perf's trace events live in one tracefs), so
    /// the harness never runs them at once.
    fn exclusive(&self) -> Option<&'static str> {
        None
    }
    /// Whether each probe is run on its own: for a peer whose verdict on one probe depends
    /// on what else the run holds (bpftrace), so that every verdict is the one a user running
    /// that probe alone gets.
    fn one_probe_per_run(&self) -> bool {
        false
    }
    /// How finely a run can be narrowed (see [`super::isolate`]).
    fn granularity(&self) -> Granularity {
        Granularity::Probe
    }
    /// Run one fixture (binary and libraries relative to `dir`, an absolute path),
    /// attaching to the probes of `sel` and reading their selected arguments, and return
    /// what was observed, within `limit`.
    fn run(&self, dir: &Path, fx: &Fixture, sel: &Selection, limit: Duration) -> Result<Run>;
    /// The units of `sel` that the peer's words refusing a whole run name as the cause,
    /// each with the words about it. Empty when the words do not say (the harness then
    /// narrows by halves).
    fn blame(
        &self,
        words: &str,
        sel: &Selection,
        shapes: &[Arc<ProbeShape>],
    ) -> Vec<(Unit, String)> {
        let _ = (words, sel, shapes);
        Vec::new()
    }
}

/// `MAJOR.MINOR` of a version string (`v0.17.0` -> `0.17`; `GNU gdb (Debian 13.1-3) 13.1`
/// -> `13.1`), for column names.
pub fn major_minor(version: &str) -> String {
    let word = version
        .split_whitespace()
        .rev()
        .find(|w| {
            w.trim_start_matches('v')
                .starts_with(|c: char| c.is_ascii_digit())
        })
        .unwrap_or(version)
        .trim_start_matches('v');
    let mut parts = word
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => format!("{a}.{b}"),
        (Some(a), None) => a.to_string(),
        _ => version.to_string(),
    }
}

/// A peer's column: `TOOL MAJOR.MINOR`, or `TOOL (ENV)` when it is not available there.
pub(crate) fn peer_column(
    tool: &str,
    env: &Env,
    version: std::result::Result<&str, &str>,
) -> String {
    match (version, env.label()) {
        (Ok(v), _) => format!("{tool} {}", major_minor(v)),
        (Err(_), Some(l)) => format!("{tool} ({l})"),
        (Err(_), None) => tool.to_string(),
    }
}

/// Every built-in implementation: usdtkit's, libbpf, and each peer on this machine and in
/// the Debian 13 root.
pub fn all() -> Vec<Box<dyn Implementation>> {
    let d13 = Env::debian13();
    vec![
        Box::new(usdtkit::Usdtkit::default()),
        Box::new(usdtkit::Usdtkit {
            opts: crate::recorder::RecorderOptions {
                mode: crate::attach::AttachMode::PerfEvent,
                ..Default::default()
            },
            before_exec: false,
        }),
        Box::new(usdtkit::Usdtkit {
            before_exec: true,
            ..Default::default()
        }),
        Box::new(libbpf::Libbpf),
        Box::new(bpftrace::Bpftrace { env: Env::Host }),
        Box::new(bpftrace::Bpftrace { env: d13.clone() }),
        Box::new(bcc::Bcc { env: Env::Host }),
        Box::new(bcc::Bcc { env: d13.clone() }),
        Box::new(gdb::Gdb { env: Env::Host }),
        Box::new(gdb::Gdb { env: d13.clone() }),
        Box::new(perf::Perf { env: Env::Host }),
        Box::new(perf::Perf { env: d13 }),
        Box::new(qemu::UsdtkitQemu),
        Box::new(qemu::GdbQemu),
    ]
}

/// The implementations `name` means: `all`; a built-in one by its name (`bpftrace@debian13`);
/// a tool's every version (`bpftrace`), or its host one (`bpftrace@host`); or `ext:COMMAND`
/// for an external one. Empty when it means none.
pub fn by_name(name: &str) -> Vec<Box<dyn Implementation>> {
    if name == "all" {
        return all();
    }
    if let Some(cmd) = name.strip_prefix("ext:") {
        return vec![Box::new(external::External::new(cmd))];
    }
    let host = name.strip_suffix("@host");
    all()
        .into_iter()
        .filter(|i| {
            let n = i.name();
            match host {
                Some(tool) => n == tool,
                None => n == name || n.strip_prefix(name).is_some_and(|r| r.starts_with('@')),
            }
        })
        .collect()
}

/// The first line a command prints for `--version` (or `-v`).
pub(crate) fn version_of(cmd: &str, arg: &str) -> std::result::Result<String, String> {
    version_in(&Env::Host, cmd, arg)
}

/// The first line `cmd arg` prints in `env`.
pub(crate) fn version_in(env: &Env, cmd: &str, arg: &str) -> std::result::Result<String, String> {
    let out = env
        .command(cmd)
        .arg(arg)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .ok_or_else(|| format!("{cmd} {arg} printed nothing"))
}

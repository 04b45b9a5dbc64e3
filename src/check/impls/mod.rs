//! USDT implementations the harness can run, one file each. Adding one: write a type that
//! implements [`Implementation`] (tell whether the tool is installed and its version; run one
//! fixture and return what it observed) and list it in [`all`]. Tools outside usdtkit plug in
//! without code through the external-command protocol ([`external`]).

pub mod bcc;
pub mod bpftrace;
pub mod external;
pub mod gdb;
pub mod libbpf;
pub mod qemu;
pub mod usdtkit;

use std::path::Path;
use std::time::Duration;

use super::compare::Run;
use crate::error::Result;
use crate::gen::Fixture;

/// One USDT implementation.
pub trait Implementation {
    /// Its name in reports and on the command line.
    fn name(&self) -> String;
    /// Its version when it can run here, or why it cannot.
    fn detect(&self) -> std::result::Result<String, String>;
    /// Whether it runs `fx`: by default, the fixtures that run on this machine.
    fn runs(&self, fx: &Fixture) -> bool {
        fx.runnable
    }
    /// Run one fixture (binary and libraries relative to `dir`) and return what was
    /// observed, within `limit`.
    fn run(&self, dir: &Path, fx: &Fixture, limit: Duration) -> Result<Run>;
}

/// Every built-in implementation.
pub fn all() -> Vec<Box<dyn Implementation>> {
    vec![
        Box::new(usdtkit::Usdtkit::default()),
        Box::new(usdtkit::Usdtkit {
            opts: crate::recorder::RecorderOptions {
                mode: crate::attach::AttachMode::PerfEvent,
                ..Default::default()
            },
        }),
        Box::new(libbpf::Libbpf),
        Box::new(bpftrace::Bpftrace),
        Box::new(bcc::Bcc),
        Box::new(gdb::Gdb),
        Box::new(qemu::UsdtkitQemu),
        Box::new(qemu::GdbQemu),
    ]
}

/// The implementation called `name`: a built-in one, or `ext:COMMAND` for an external one.
pub fn by_name(name: &str) -> Option<Box<dyn Implementation>> {
    if let Some(cmd) = name.strip_prefix("ext:") {
        return Some(Box::new(external::External::new(cmd)));
    }
    all().into_iter().find(|i| i.name() == name)
}

/// The first line a command prints for `--version` (or `-v`).
pub(crate) fn version_of(cmd: &str, arg: &str) -> std::result::Result<String, String> {
    let out = std::process::Command::new(cmd)
        .arg(arg)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .ok_or_else(|| format!("{cmd} {arg} printed nothing"))
}

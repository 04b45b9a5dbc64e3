//! gdb: a breakpoint on every `-probe-stap` location, arguments read as `$_probe_argN`
//! through gdb's Python API (`fixtures/peers/gdb_usdt.py`). Not BPF: a reference that reads
//! the target's registers and memory directly.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{version_of, Implementation};
use crate::check::compare::{Observed, ObservedHit, Run};
use crate::check::run::{output_within, probe_keys};
use crate::error::{Error, Result};
use crate::gen::Fixture;

pub(crate) const SCRIPT: &str = include_str!("../../../fixtures/peers/gdb_usdt.py");

/// GNU gdb.
#[derive(Debug, Clone, Copy)]
pub struct Gdb;

impl Implementation for Gdb {
    fn name(&self) -> String {
        "gdb".into()
    }

    fn detect(&self) -> std::result::Result<String, String> {
        version_of("gdb", "--version")
    }

    fn run(&self, dir: &Path, fx: &Fixture, limit: Duration) -> Result<Run> {
        let script = std::env::temp_dir().join(format!("usdtkit-gdb-{}.py", std::process::id()));
        std::fs::write(&script, SCRIPT).map_err(|source| Error::Io {
            path: script.clone(),
            source,
        })?;
        let mut cmd = Command::new("gdb");
        cmd.args(["-batch", "-nx", "-x"])
            .arg(&script)
            .arg("--args")
            .arg(dir.join(&fx.binary))
            .args(&fx.args)
            .env(
                "USDTKIT_PROBES",
                serde_json::to_string(&probe_keys(fx)).expect("json"),
            );
        let (_, stdout, stderr) = output_within(cmd, limit)?;
        let _ = std::fs::remove_file(&script);
        parse_run(fx, stdout, &stderr)
    }
}

/// What the script printed: one hit per `USDTKIT-GDB` line; probes gdb said it could not
/// find are refused as a whole.
pub(crate) fn parse_run(fx: &Fixture, stdout: String, stderr: &str) -> Result<Run> {
    let mut hits = Vec::new();
    for line in stdout.lines() {
        let Some(json) = line.strip_prefix("USDTKIT-GDB ") else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::Invalid(format!("gdb script output: {e}")))?;
        let key = v["probe"].as_str().unwrap_or_default();
        let (provider, name) = key.split_once(':').unwrap_or((key, ""));
        let args = v["args"]
            .as_array()
            .map(|a| a.iter().map(observed).collect())
            .unwrap_or_default();
        hits.push(ObservedHit {
            provider: provider.into(),
            name: name.into(),
            pc: None,
            args,
        });
    }
    let mut run = Run {
        hits,
        stdout,
        ..Run::default()
    };
    // gdb says "No probe matching" for probes it cannot see: refused as a whole.
    for key in probe_keys(fx) {
        let (p, n) = key.split_once(':').unwrap_or_default();
        let needle = format!("provider=`{p}', name=`{n}'");
        if stderr.contains(&needle) && !run.hits.iter().any(|h| h.provider == p && h.name == n) {
            run.refused
                .insert(key, "gdb: no probe matching (note not understood)".into());
        }
    }
    Ok(run)
}

/// One argument as the script printed it.
pub(crate) fn observed(a: &serde_json::Value) -> Observed {
    if let Some(i) = a.get("int") {
        if let Some(v) = i.as_i64() {
            return Observed::Int(v.into());
        }
        if let Some(v) = i.as_u64() {
            return Observed::Int(v.into());
        }
        if let Some(v) = i.as_str().and_then(|s| s.parse::<i128>().ok()) {
            return Observed::Int(v);
        }
    }
    if let Some(f) = a.get("float").and_then(|f| f.as_f64()) {
        return Observed::Float(f);
    }
    Observed::Error(
        a.get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("unreadable")
            .to_string(),
    )
}

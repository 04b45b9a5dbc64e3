//! gdb: a breakpoint on every `-probe-stap` location, arguments read as `$_probe_argN`
//! through gdb's Python API (`fixtures/peers/gdb_usdt.py`). Not BPF: a reference that reads
//! the target's registers and memory directly. gdb starts the fixture itself; in another
//! Debian root the fixture runs there too (with that root's C library).

use std::path::Path;
use std::time::Duration;

use super::{peer_column, version_in, Implementation};
use crate::check::compare::{Observed, ObservedHit, Run};
use crate::check::env::Env;
use crate::check::run::{output_within, Scratch};
use crate::check::select::Selection;
use crate::error::{Error, Result};
use crate::gen::Fixture;

pub(crate) const SCRIPT: &str = include_str!("../../../fixtures/peers/gdb_usdt.py");

/// GNU gdb, on this machine or in another Debian root.
#[derive(Debug, Clone)]
pub struct Gdb {
    /// Where it runs.
    pub env: Env,
}

impl Implementation for Gdb {
    fn name(&self) -> String {
        self.env.id("gdb")
    }

    fn detect(&self) -> std::result::Result<String, String> {
        self.env.check("/usr/bin/gdb")?;
        version_in(&self.env, "gdb", "--version")
    }

    fn column(&self, version: std::result::Result<&str, &str>) -> String {
        peer_column("gdb", &self.env, version)
    }

    fn run(&self, dir: &Path, fx: &Fixture, sel: &Selection, limit: Duration) -> Result<Run> {
        let script = Scratch::new("gdb.py", SCRIPT.as_bytes())?;
        let keys: Vec<String> = sel.probes.iter().map(|w| w.probe.key()).collect();
        let mut cmd = self.env.with_bind(dir).command("gdb");
        cmd.args(["-batch", "-nx", "-x"])
            .arg(&script.0)
            .arg("--args")
            .arg(dir.join(&fx.binary))
            .args(&fx.args)
            .env(
                "USDTKIT_PROBES",
                serde_json::to_string(&keys).expect("json"),
            );
        let (_, stdout, stderr) = output_within(cmd, limit)?;
        parse_run(&keys, stdout, &stderr)
    }
}

/// What the script printed: one hit per `USDTKIT-GDB` line; probes (of `keys`) gdb said it
/// could not find are refused as a whole.
pub(crate) fn parse_run(keys: &[String], stdout: String, stderr: &str) -> Result<Run> {
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
    for key in keys {
        let (p, n) = key.split_once(':').unwrap_or_default();
        let needle = format!("provider=`{p}', name=`{n}'");
        if stderr.contains(&needle) && !run.hits.iter().any(|h| h.provider == p && h.name == n) {
            run.refused.insert(
                key.clone(),
                "gdb: no probe matching (note not understood)".into(),
            );
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

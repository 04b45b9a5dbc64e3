//! bcc: a generated program using the `bcc` Python module (Debian's python3-bpfcc, importable
//! only from /usr/bin/python3), `bpf_usdt_readarg()` for every argument; spoken through the
//! external-command protocol (`fixtures/peers/bcc_usdt.py`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::external::run_protocol;
use super::Implementation;
use crate::check::compare::Run;
use crate::error::{Error, Result};
use crate::gen::Fixture;

const SCRIPT: &str = include_str!("../../../fixtures/peers/bcc_usdt.py");
const PYTHON: &str = "/usr/bin/python3";

/// bcc (BPF Compiler Collection).
#[derive(Debug, Clone, Copy)]
pub struct Bcc;

impl Implementation for Bcc {
    fn name(&self) -> String {
        "bcc".into()
    }

    fn detect(&self) -> std::result::Result<String, String> {
        let out = Command::new(PYTHON)
            .args(["-c", "import bcc; print(bcc.__version__)"])
            .output()
            .map_err(|e| format!("{PYTHON}: {e}"))?;
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !v.is_empty() {
            Ok(v)
        } else {
            Err("the bcc module is not importable from /usr/bin/python3 (python3-bpfcc)".into())
        }
    }

    fn run(&self, dir: &Path, fx: &Fixture, limit: Duration) -> Result<Run> {
        let script = std::env::temp_dir().join(format!("usdtkit-bcc-{}.py", std::process::id()));
        std::fs::write(&script, SCRIPT).map_err(|source| Error::Io {
            path: script.clone(),
            source,
        })?;
        let run = run_protocol(dir, fx, limit, true, |pid, probes| {
            let mut c = Command::new(PYTHON);
            c.arg(&script).arg(pid.to_string()).arg(probes);
            c
        });
        let _ = std::fs::remove_file(&script);
        // bcc compiles BPF C against the running kernel's headers; without them it cannot
        // run at all here, which says nothing about the fixture.
        let run = run?;
        if let Some(why) = run.refused.get("*") {
            if why.contains("Failed to compile BPF module") {
                let kernel =
                    std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
                return Err(Error::Invalid(format!(
                    "bcc cannot compile its BPF program here ({why}): no kernel headers for Linux {} in /lib/modules",
                    kernel.trim()
                )));
            }
        }
        Ok(run)
    }
}

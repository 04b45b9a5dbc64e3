//! bcc: a generated program using the `bcc` Python module (`python3-bpfcc`, importable only
//! from the distribution's /usr/bin/python3), `bpf_usdt_readarg()` for every argument into a
//! local of the argument's own size (bcc refuses any other); spoken through the
//! external-command protocol (`fixtures/peers/bcc_usdt.py`).
//!
//! bcc compiles its BPF C against kernel headers. This kernel ships none, so setup merges
//! Debian's two header directories of the environment's `linux-headers-amd64` into one tree
//! at [`KERNEL_SOURCE`], which `BCC_KERNEL_SOURCE` points at.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::external::run_protocol;
use super::{peer_column, Implementation};
use crate::check::compare::Run;
use crate::check::env::Env;
use crate::check::run::Scratch;
use crate::check::select::{Granularity, ProbeShape, Selection, Unit};
use crate::error::Result;
use crate::gen::Fixture;

const SCRIPT: &str = include_str!("../../../fixtures/peers/bcc_usdt.py");
const PYTHON: &str = "/usr/bin/python3";
/// Where setup leaves the merged kernel headers bcc compiles against, in each environment.
pub const KERNEL_SOURCE: &str = "/usr/src/usdtkit-kernel";

/// bcc (BPF Compiler Collection), on this machine or in another Debian root.
#[derive(Debug, Clone)]
pub struct Bcc {
    /// Where it runs.
    pub env: Env,
}

impl Implementation for Bcc {
    fn name(&self) -> String {
        self.env.id("bcc")
    }

    fn detect(&self) -> std::result::Result<String, String> {
        self.env.check(PYTHON)?;
        let out = self
            .env
            .command(PYTHON)
            .args(["-c", "import bcc; print(bcc.__version__)"])
            .output()
            .map_err(|e| format!("{PYTHON}: {e}"))?;
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || v.is_empty() {
            return Err(format!(
                "not available: the bcc module is not importable from {PYTHON} (python3-bpfcc)"
            ));
        }
        let headers = match &self.env {
            Env::Host => Path::new(KERNEL_SOURCE).to_path_buf(),
            Env::Root { dir, .. } => dir.join(KERNEL_SOURCE.trim_start_matches('/')),
        };
        if !headers.join("include").is_dir() {
            return Err(format!(
                "not available: bcc {v} needs kernel headers; none at {} (ci/setup.sh merges linux-headers-amd64 there)",
                headers.display()
            ));
        }
        Ok(v)
    }

    fn column(&self, version: std::result::Result<&str, &str>) -> String {
        peer_column("bcc", &self.env, version)
    }

    fn granularity(&self) -> Granularity {
        Granularity::Argument
    }

    // The driver names its BPF functions `probe_N`, N being the probe's place in the
    // selection, and bcc names the function reading argument K (from 1) of it
    // `_bpf_readarg_probe_N_K`: a compiler error there names the argument. A program the
    // kernel refuses to load (`b'probe_N'`) names only its probe: a suspect.
    fn blame(
        &self,
        words: &str,
        sel: &Selection,
        shapes: &[std::sync::Arc<ProbeShape>],
    ) -> Vec<(Unit, String)> {
        let index = |w: &crate::check::select::Wanted| {
            shapes
                .iter()
                .position(|s| std::sync::Arc::ptr_eq(s, &w.probe))
        };
        let mut out: Vec<(Unit, String)> = Vec::new();
        if let Some(rest) = words.split("BPF program b'probe_").nth(1) {
            let n: Option<usize> = rest.split('\'').next().and_then(|n| n.parse().ok());
            if let Some(probe) = n.and_then(|n| sel.probes.get(n)).and_then(index) {
                out.push((Unit { probe, arg: None }, words.to_string()));
            }
        }
        for part in words.split(" | ").filter(|p| p.contains("error:")) {
            let Some(rest) = part.split("_bpf_readarg_probe_").nth(1) else {
                continue;
            };
            let mut nums = rest.split(|c: char| !c.is_ascii_digit());
            let (Some(n), Some(k)) = (
                nums.next().and_then(|n| n.parse::<usize>().ok()),
                nums.next().and_then(|k| k.parse::<usize>().ok()),
            ) else {
                continue;
            };
            let Some(w) = sel.probes.get(n) else { continue };
            let Some(probe) = index(w) else { continue };
            let u = Unit {
                probe,
                arg: k.checked_sub(1),
            };
            let what = part.split("error:").nth(1).unwrap_or(part).trim();
            if u.arg.is_some_and(|a| w.reads(a)) && !out.iter().any(|(x, _)| *x == u) {
                out.push((u, format!("error: {what}")));
            }
        }
        out
    }

    fn run(&self, dir: &Path, fx: &Fixture, sel: &Selection, limit: Duration) -> Result<Run> {
        let script = Scratch::new("bcc.py", SCRIPT.as_bytes())?;
        // The arguments to read, with the size and sign bcc gives each: the largest over the
        // probe's sites.
        let reads: Vec<Vec<(usize, u32, bool)>> = sel
            .probes
            .iter()
            .map(|w| {
                w.args
                    .iter()
                    .filter(|&&a| a < 12)
                    .map(|&a| (a, w.probe.args[a].size, w.probe.args[a].signed))
                    .collect()
            })
            .collect();
        let reads = serde_json::to_string(&reads).expect("json");
        let env = self.env.with_bind(dir);
        let run = run_protocol(dir, fx, sel, limit, true, |pid, probes| {
            let mut c: Command = env.command(PYTHON);
            c.arg(&script.0)
                .arg(pid.to_string())
                .arg(probes)
                .arg(&reads)
                .env("BCC_KERNEL_SOURCE", KERNEL_SOURCE);
            c
        });
        drop(script);
        run
    }
}

//! libbpf: the same recorder program attached with libbpf's own `bpf_program__attach_usdt`
//! (the libbpf vendored by libbpf-sys), one call per probe name. Also compares, probe by
//! probe, the spec entries libbpf writes into `__bpf_usdt_specs` with the ones usdtkit
//! computes for the same sites and cookie, byte for byte.

use std::collections::BTreeSet;
use std::mem::MaybeUninit;
use std::path::Path;
use std::time::Duration;

use super::usdtkit::observed;
use super::{peer_column, Implementation};
use crate::attach::{plan, spec};
use crate::check::compare::Run;
use crate::check::env::Env;
use crate::check::run::Waiting;
use crate::check::select::Selection;
use crate::error::Result;
use crate::gen::Fixture;
use crate::probe::MappedFile;
use crate::recorder::{Recorder, RecorderOptions};

/// libbpf, as vendored by libbpf-sys.
#[derive(Debug, Clone, Copy)]
pub struct Libbpf;

impl Implementation for Libbpf {
    fn name(&self) -> String {
        "libbpf".into()
    }

    fn detect(&self) -> std::result::Result<String, String> {
        let (major, minor) = crate::sys::bpf::libbpf_version();
        Ok(format!("{major}.{minor} (vendored by libbpf-sys)"))
    }

    fn column(&self, version: std::result::Result<&str, &str>) -> String {
        peer_column("libbpf", &Env::Host, version)
    }

    // Its refusals are read from libbpf's log, which is one per process.
    fn exclusive(&self) -> Option<&'static str> {
        Some("libbpf-log")
    }

    fn run(&self, dir: &Path, fx: &Fixture, sel: &Selection, limit: Duration) -> Result<Run> {
        let mut storage = MaybeUninit::uninit();
        let opts = RecorderOptions {
            libbpf: true,
            ..RecorderOptions::default()
        };
        let mut rec = Recorder::load(&mut storage, opts)?;
        let proc_ = Waiting::start(dir, fx)?;
        let pid = proc_.pid() as i32;
        let mut run = Run::default();
        let mut ours: Vec<Vec<u8>> = Vec::new();
        for path in sel.objects() {
            let a = rec.attach_libbpf(path, pid, |p, n| {
                sel.probes
                    .iter()
                    .any(|w| w.probe.object == path && w.probe.provider == p && w.probe.name == n)
            })?;
            for (key, why) in a.refused {
                run.refused.insert(key, why);
            }
            ours.extend(our_specs(path, &a.attached)?);
        }
        let theirs = rec.spec_entries(ours.len() as u32 + 64);
        run.notes = compare_specs(&ours, &theirs);
        if run.notes.is_empty() && !ours.is_empty() {
            run.notes.push(format!(
                "spec entries identical to usdtkit's: {} distinct specs for {} sites",
                theirs.len(),
                ours.len()
            ));
        }
        let mut hits = Vec::new();
        let (status, stdout) = proc_.release(limit, || {
            if let Ok(h) = rec.drain() {
                hits.extend(h);
            }
        })?;
        hits.extend(rec.poll(Duration::from_millis(50))?);
        run.lost = rec.stats()?.lost;
        if !status.success() {
            return Err(crate::Error::Invalid(format!(
                "{} exited with {status}",
                fx.name
            )));
        }
        run.hits = hits.into_iter().map(observed).collect();
        run.stdout = stdout;
        Ok(run)
    }
}

/// The specs usdtkit computes for the sites libbpf attached, with libbpf's cookies.
fn our_specs(path: &Path, attached: &[(String, u64)]) -> Result<Vec<Vec<u8>>> {
    let mapped = MappedFile::open(path)?;
    let usdt = mapped.usdt()?;
    let nop5 = crate::sys::perf::has_uprobe_syscall();
    let mut v = Vec::new();
    for (key, cookie) in attached {
        let (p, n) = key.split_once(':').unwrap_or_default();
        let Some(probe) = usdt.probe(p, n) else {
            continue;
        };
        for s in &probe.sites {
            let plan = plan::plan_site(usdt.arch(), spec::Layout::V2, s, mapped.bytes(), nop5);
            v.push(spec::encode(spec::Layout::V2, false, &plan.args, *cookie));
        }
    }
    Ok(v)
}

/// Differences between usdtkit's and libbpf's spec sets, one line each.
fn compare_specs(ours: &[Vec<u8>], theirs: &[(u32, Vec<u8>)]) -> Vec<String> {
    let a: BTreeSet<&[u8]> = ours.iter().map(Vec::as_slice).collect();
    let b: BTreeSet<&[u8]> = theirs.iter().map(|(_, v)| v.as_slice()).collect();
    let mut notes = Vec::new();
    for s in a.difference(&b) {
        notes.push(format!(
            "spec computed by usdtkit, not written by libbpf: {}",
            describe(s)
        ));
    }
    for s in b.difference(&a) {
        notes.push(format!(
            "spec written by libbpf, not computed by usdtkit: {}",
            describe(s)
        ));
    }
    notes
}

/// A spec as readable fields (1.7 layout, little-endian).
fn describe(s: &[u8]) -> String {
    let u64_at = |o: usize| u64::from_le_bytes(s[o..o + 8].try_into().expect("8"));
    let cnt = i16::from_le_bytes([s[296], s[297]]);
    let mut out = format!("cookie {} args {cnt}:", u64_at(288));
    for i in 0..(cnt.max(0) as usize).min(spec::MAX_ARGS) {
        let o = i * 24;
        out.push_str(&format!(
            " [type {} val_off {:#x} reg_off {} idx {:#06x} signed {} shift {}]",
            s[o + 8],
            u64_at(o),
            i16::from_le_bytes([s[o + 14], s[o + 15]]),
            u16::from_le_bytes([s[o + 10], s[o + 11]]),
            s[o + 16],
            s[o + 17]
        ));
    }
    out
}

//! Attach and detach latency, measured side by side: usdtkit (one uprobe_multi link for the
//! whole file), libbpf (`bpf_program__attach_usdt`, one link per probe name), and the kernel's
//! own cost (one raw uprobe_multi link over precomputed offsets, no parsing, no specs), on a
//! scale fixture with P processes mapping it.

use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::check::run::Waiting;
use crate::error::{Error, Result};
use crate::gen::{self, GenOptions, Manifest, Profile};
use crate::probe::MappedFile;
use crate::recorder::{Recorder, RecorderOptions};

/// What to measure.
#[derive(Debug, Clone)]
pub struct AttachBench {
    /// Sites in all.
    pub sites: usize,
    /// Probe names they are spread over.
    pub probes: usize,
    /// Running processes mapping the binary while attaching.
    pub procs: usize,
    /// One site per page.
    pub sparse: bool,
    /// Implementations: `usdtkit`, `libbpf`, `kernel`.
    pub impls: Vec<String>,
}

/// One implementation's timings.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Implementation.
    pub implementation: String,
    /// Time to attach every site.
    pub attach_ms: f64,
    /// Time to detach them all.
    pub detach_ms: f64,
    /// Kernel links created.
    pub links: usize,
    /// Sites attached.
    pub sites: usize,
}

/// The scale fixture for `probes` × `sites_per_probe`, built once under `target/`.
pub fn scale_fixture(probes: usize, per_probe: usize, sparse: bool) -> Result<(PathBuf, Manifest)> {
    let profile = Profile::Scale {
        probes,
        sites: per_probe,
        sparse,
    };
    let dir = gen::default_out_dir(&profile, 1);
    if let Ok(m) = Manifest::load(&dir) {
        return Ok((dir, m));
    }
    let m = gen::generate(&GenOptions {
        seed: 1,
        profile,
        out: dir.clone(),
        progress: false,
    })?;
    Ok((dir, m))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Attach and detach once with `implementation` on `binary` (any process).
pub fn measure(implementation: &str, binary: &Path) -> Result<Timing> {
    let path = binary.to_string_lossy().into_owned();
    match implementation {
        "usdtkit" => {
            let mut s = MaybeUninit::uninit();
            let mut rec = Recorder::load(&mut s, RecorderOptions::default())?;
            let t = Instant::now();
            let link = rec.attach(&path, &[("*", "*")], -1, &[])?;
            let attach = t.elapsed();
            let (links, sites) = (link.link_count(), link.sites().len());
            let t = Instant::now();
            rec.detach_all();
            Ok(Timing {
                implementation: implementation.into(),
                attach_ms: ms(attach),
                detach_ms: ms(t.elapsed()),
                links,
                sites,
            })
        }
        "libbpf" => {
            let mut s = MaybeUninit::uninit();
            let opts = RecorderOptions {
                libbpf: true,
                ..RecorderOptions::default()
            };
            let mut rec = Recorder::load(&mut s, opts)?;
            let t = Instant::now();
            let a = rec.attach_libbpf(binary, -1)?;
            let attach = t.elapsed();
            if let Some((p, why)) = a.refused.first() {
                return Err(Error::Invalid(format!("libbpf refused {p}: {why}")));
            }
            let links = a.attached.len();
            let t = Instant::now();
            rec.detach_all();
            Ok(Timing {
                implementation: implementation.into(),
                attach_ms: ms(attach),
                detach_ms: ms(t.elapsed()),
                links,
                sites: 0,
            })
        }
        "kernel" => {
            // The floor: offsets computed beforehand, one uprobe_multi link, no specs.
            let mapped = MappedFile::open(binary)?;
            let usdt = mapped.usdt()?;
            let offsets: Vec<u64> = usdt.sites().iter().map(|s| s.file_offset).collect();
            let mut s = MaybeUninit::uninit();
            let rec = Recorder::load(&mut s, RecorderOptions::default())?;
            let prog = rec.multi_program_fd();
            let t = Instant::now();
            let link = crate::attach::raw_uprobe_multi(prog.as_fd(), binary, &offsets)?;
            let attach = t.elapsed();
            let t = Instant::now();
            drop(link);
            Ok(Timing {
                implementation: implementation.into(),
                attach_ms: ms(attach),
                detach_ms: ms(t.elapsed()),
                links: 1,
                sites: offsets.len(),
            })
        }
        other => Err(Error::Invalid(format!(
            "unknown implementation `{other}` (usdtkit, libbpf, kernel)"
        ))),
    }
}

/// Run the comparison: build (or reuse) the fixture, start `procs` processes, measure each
/// implementation once.
pub fn run(b: &AttachBench) -> Result<Vec<Timing>> {
    let probes = b.probes.max(1);
    let per = b.sites.div_ceil(probes).max(1);
    let (dir, m) = scale_fixture(probes, per, b.sparse)?;
    let fx = &m.fixtures[0];
    let procs: Vec<Waiting> = (0..b.procs)
        .map(|_| Waiting::start(&dir, fx))
        .collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_millis(50));
    let binary = dir.join(&fx.binary);
    let out = b
        .impls
        .iter()
        .map(|i| measure(i, &binary))
        .collect::<Result<Vec<_>>>();
    drop(procs);
    out
}

//! Attach and detach latency, measured side by side: usdtkit (one uprobe_multi link for the
//! whole file), libbpf (`bpf_program__attach_usdt`, one link per probe name), and the kernel's
//! own cost (one raw uprobe_multi link over precomputed offsets, no parsing, no specs), on a
//! scale fixture with P processes mapping it. [`parse`] compares parsing with a bare note
//! walk.
//!
//! Harness API (feature `harness`): used by the `usdtkit` command and the tests; not
//! covered by semver.
//!
//! Detaching a uprobe_multi link waits for an RCU Tasks Trace grace period, and how long that
//! wait is depends on when the detach starts relative to the previous grace period. Measured
//! back to back, the previous grace period is the previous detach's, so each implementation's
//! own load and attach time would fix its phase, and with it its detach time (at 1,000 sites
//! one implementation read 19 ms in every round and another 27 ms). An untimed pause drawn
//! uniformly from 0 to [`DETACH_PHASE_SPREAD`] before each detach samples the phase instead.

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

pub mod parse;

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
    /// Rounds: each measures every implementation once (the order rotating between rounds);
    /// times and ratios are medians over the rounds.
    pub rounds: usize,
}

/// The median and quartiles of a set of measurements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// First quartile.
    pub q1: f64,
    /// Third quartile.
    pub q3: f64,
}

impl Spread {
    /// The spread of `values` (`NaN`s if there are none).
    pub fn of(mut values: Vec<f64>) -> Spread {
        if values.is_empty() {
            return Spread {
                median: f64::NAN,
                q1: f64::NAN,
                q3: f64::NAN,
            };
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Spread {
            median: at(0.5),
            q1: at(0.25),
            q3: at(0.75),
        }
    }
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

/// One implementation over several rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Rounds {
    /// Implementation.
    pub implementation: String,
    /// Median attach time.
    pub attach_ms: f64,
    /// Median detach time.
    pub detach_ms: f64,
    /// Kernel links created.
    pub links: usize,
    /// Sites attached (0 where the implementation does not say).
    pub sites: usize,
    /// Rounds measured.
    pub rounds: usize,
    /// This implementation's attach time divided by usdtkit's in the same round, over the
    /// rounds (absent when usdtkit is not measured).
    pub attach_vs_usdtkit: Option<Spread>,
    /// The same for detach.
    pub detach_vs_usdtkit: Option<Spread>,
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

/// The longest untimed pause before a detach (see the module documentation): longer than the
/// spacing of the detach durations seen here (about 15, 19 and 27 ms).
pub const DETACH_PHASE_SPREAD: Duration = Duration::from_millis(50);

/// Sleep for a random time from 0 to [`DETACH_PHASE_SPREAD`].
fn detach_phase_pause() {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    let spread = DETACH_PHASE_SPREAD.as_micros() as u64;
    std::thread::sleep(Duration::from_micros(random % spread));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Attach and detach once with `implementation` on `binary` (any process).
pub fn measure(implementation: &str, binary: &Path) -> Result<Timing> {
    let path = binary.to_string_lossy().into_owned();
    // (attach time, detach time, kernel links, sites) per implementation.
    let (attach, detach, links, sites) = match implementation {
        "usdtkit" => {
            let mut s = MaybeUninit::uninit();
            let mut rec = Recorder::load(&mut s, RecorderOptions::default())?;
            let t = Instant::now();
            let link = rec.attach(&path, &[("*", "*")], -1, &[])?;
            let attach = t.elapsed();
            let (links, sites) = (link.link_count(), link.sites().len());
            detach_phase_pause();
            let t = Instant::now();
            rec.detach_all();
            (attach, t.elapsed(), links, sites)
        }
        "libbpf" => {
            let mut s = MaybeUninit::uninit();
            let opts = RecorderOptions {
                libbpf: true,
                ..RecorderOptions::default()
            };
            let mut rec = Recorder::load(&mut s, opts)?;
            let t = Instant::now();
            let a = rec.attach_libbpf(binary, -1, |_, _| true)?;
            let attach = t.elapsed();
            if let Some((p, why)) = a.refused.first() {
                return Err(Error::Invalid(format!("libbpf refused {p}: {why}")));
            }
            detach_phase_pause();
            let t = Instant::now();
            rec.detach_all();
            (attach, t.elapsed(), a.attached.len(), 0)
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
            detach_phase_pause();
            let t = Instant::now();
            drop(link);
            (attach, t.elapsed(), 1, offsets.len())
        }
        other => {
            return Err(Error::Invalid(format!(
                "unknown implementation `{other}` (usdtkit, libbpf, kernel)"
            )))
        }
    };
    Ok(Timing {
        implementation: implementation.into(),
        attach_ms: ms(attach),
        detach_ms: ms(detach),
        links,
        sites,
    })
}

/// Run the comparison: build (or reuse) the fixture, start `procs` processes, then measure
/// every implementation once per round, rotating their order between rounds (see
/// `round_order`); `progress` is told of each round as it starts.
pub fn run(b: &AttachBench, mut progress: impl FnMut(usize, usize)) -> Result<Vec<Rounds>> {
    let probes = b.probes.max(1);
    let per = b.sites.div_ceil(probes).max(1);
    let (dir, m) = scale_fixture(probes, per, b.sparse)?;
    let fx = &m.fixtures[0];
    let procs: Vec<Waiting> = (0..b.procs)
        .map(|_| Waiting::start(&dir, fx))
        .collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_millis(50));
    let binary = dir.join(&fx.binary);
    let rounds = b.rounds.max(1);
    let mut all: Vec<Vec<Timing>> = vec![Vec::new(); b.impls.len()];
    for round in 0..rounds {
        progress(round + 1, rounds);
        let order = round_order(b.impls.len(), round);
        for i in order {
            all[i].push(measure(&b.impls[i], &binary)?);
        }
    }
    drop(procs);
    let base = b.impls.iter().position(|i| i == "usdtkit");
    let ratio = |i: usize, f: fn(&Timing) -> f64| {
        let base = &all[base?];
        Some(Spread::of(
            all[i].iter().zip(base).map(|(t, u)| f(t) / f(u)).collect(),
        ))
    };
    Ok(b.impls
        .iter()
        .enumerate()
        .map(|(i, name)| Rounds {
            implementation: name.clone(),
            attach_ms: Spread::of(all[i].iter().map(|t| t.attach_ms).collect()).median,
            detach_ms: Spread::of(all[i].iter().map(|t| t.detach_ms).collect()).median,
            links: all[i].last().map_or(0, |t| t.links),
            sites: all[i].last().map_or(0, |t| t.sites),
            rounds,
            attach_vs_usdtkit: ratio(i, |t| t.attach_ms),
            detach_vs_usdtkit: ratio(i, |t| t.detach_ms),
        })
        .collect())
}

/// The order of `n` implementations in round `round`: rotated by one each round, so that
/// over `n` rounds each takes every position once (the first runs right after the round's
/// recorders are loaded, the others right after another implementation's detach), and
/// reversed every other cycle of `n`, so that (for the three implementations there are) each
/// follows each of the others as often.
fn round_order(n: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).map(|i| (i + round) % n.max(1)).collect();
    if (round / n.max(1)) % 2 == 1 {
        order.reverse();
    }
    order
}

/// Per-hit cost of one probe site kind.
#[derive(Debug, Clone, Serialize)]
pub struct HitCost {
    /// `none` (not attached), `usdtkit` or `libbpf`.
    pub implementation: String,
    /// `nop` or `nop5` site.
    pub site: String,
    /// Loop iterations (hits).
    pub iterations: u64,
    /// Wall time of the whole run.
    pub total_ms: f64,
    /// Nanoseconds per iteration.
    pub ns_per_hit: f64,
}

const LOOP_S: &str = include_str!("../../fixtures/asm/hit_loop.S");
const LOOP_MAIN: &str = include_str!("../../fixtures/c/hit_loop_main.c");
const NOTE_INC: &str = include_str!("../../fixtures/asm/usdt-note.inc");

/// Build (once) the per-hit loop fixture under `target/`.
pub fn hit_loop_fixture() -> Result<PathBuf> {
    let dir = gen::default_out_dir(&Profile::Quick, 0).with_file_name("hit-loop");
    let bin = dir.join("hit_loop");
    if bin.exists() {
        return Ok(bin);
    }
    let io = |path: &Path, e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    for (name, text) in [
        ("hit_loop.S", LOOP_S),
        ("hit_loop_main.c", LOOP_MAIN),
        ("usdt-note.inc", NOTE_INC),
    ] {
        std::fs::write(dir.join(name), text).map_err(|e| io(&dir.join(name), e))?;
    }
    let tc = gen::compile::Toolchain {
        compiler: "gcc".into(),
        cpp: false,
        target: gen::compile::host().into(),
        opt: "2".into(),
        pie: true,
        freestanding: false,
        linker: None,
    };
    tc.link(
        &[dir.join("hit_loop.S"), dir.join("hit_loop_main.c")],
        &bin,
        false,
        std::slice::from_ref(&dir),
        &[],
    )?;
    Ok(bin)
}

fn run_loop(bin: &Path, site: &str, n: u64) -> Result<Duration> {
    let t = Instant::now();
    let st = std::process::Command::new(bin)
        .args([site, &n.to_string()])
        .status()
        .map_err(|e| Error::Io {
            path: bin.to_path_buf(),
            source: e,
        })?;
    let d = t.elapsed();
    if !st.success() {
        return Err(Error::Invalid(format!(
            "{} exited with {st}",
            bin.display()
        )));
    }
    Ok(d)
}

/// Time `n` hits of the `site` (`nop` or `nop5`) probe with `implementation` attached
/// (`none`, `usdtkit`, `libbpf`), in count-only mode; checks the recorder counted every hit.
pub fn hit_cost(implementation: &str, site: &str, n: u64) -> Result<HitCost> {
    let bin = hit_loop_fixture()?;
    let path = bin.to_string_lossy().into_owned();
    let total = match implementation {
        "none" => run_loop(&bin, site, n)?,
        "usdtkit" | "libbpf" => {
            let mut s = MaybeUninit::uninit();
            let opts = RecorderOptions {
                count_only: true,
                libbpf: implementation == "libbpf",
                ..RecorderOptions::default()
            };
            let mut rec = Recorder::load(&mut s, opts)?;
            if implementation == "libbpf" {
                let a = rec.attach_libbpf(&bin, -1, |_, _| true)?;
                if let Some((p, why)) = a.refused.first() {
                    return Err(Error::Invalid(format!("libbpf refused {p}: {why}")));
                }
            } else {
                rec.attach(&path, &[("usdtbench", "*")], -1, &[])?;
            }
            let d = run_loop(&bin, site, n)?;
            let counted = rec.hit_count()?;
            if counted != n {
                return Err(Error::Invalid(format!(
                    "{implementation} counted {counted} hits of {n}"
                )));
            }
            d
        }
        other => {
            return Err(Error::Invalid(format!(
                "unknown implementation `{other}` (none, usdtkit, libbpf)"
            )))
        }
    };
    Ok(HitCost {
        implementation: implementation.into(),
        site: site.into(),
        iterations: n,
        total_ms: ms(total),
        ns_per_hit: total.as_secs_f64() * 1e9 / n as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::round_order;

    #[test]
    fn every_implementation_takes_every_place_and_follows_every_other_alike() {
        for n in 1..=3 {
            let mut at = vec![vec![0; n]; n];
            let mut follows = vec![vec![0; n]; n];
            for round in 0..2 * n {
                let order = round_order(n, round);
                let mut sorted = order.clone();
                sorted.sort();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "a permutation");
                for (place, &i) in order.iter().enumerate() {
                    at[i][place] += 1;
                }
                for w in order.windows(2) {
                    follows[w[1]][w[0]] += 1;
                }
            }
            assert!(at.iter().flatten().all(|&c| c == 2), "{n}: {at:?}");
            for (i, row) in follows.iter().enumerate() {
                for (j, &c) in row.iter().enumerate() {
                    assert_eq!(c, if i == j { 0 } else { 2 }, "{n}: {follows:?}");
                }
            }
        }
    }
}

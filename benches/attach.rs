//! Attach and detach latency (root only; skipped with a message otherwise): usdtkit (one
//! uprobe_multi link for the file), libbpf (`attach_usdt` per probe name) and the kernel's
//! floor (one raw uprobe_multi link over precomputed offsets), on generated fixtures with
//! running processes mapping them. Attach and detach are timed separately with
//! `iter_custom`, each sample one attach and one detach (flat sampling: ten of each).
//!
//! Shapes: one probe of 1,000 to 50,000 sites with 0, 1, 16 or 64 processes (dense, and
//! sparse: one site per page); 100 and 1,000 probe names. libbpf pays one uprobe_multi link,
//! and so one kernel grace period on detach, per probe name (about 55 ms here): with 1,000
//! names a single detach takes about a minute, so the 1,000-name shapes compare usdtkit with
//! the kernel's floor, and add libbpf only with `USDTKIT_BENCH_FULL=1` (about 20 minutes);
//! `usdtkit bench attach --probes 1000` measures that comparison once.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use usdtkit::bench::{measure, scale_fixture};
use usdtkit::check::run::Waiting;

/// One shape: probe names, sites per probe, running processes, sparse layout, and whether
/// libbpf runs on it by default.
struct Shape {
    probes: usize,
    per_probe: usize,
    procs: usize,
    sparse: bool,
    libbpf: bool,
}

const fn shape(probes: usize, per_probe: usize, procs: usize) -> Shape {
    Shape {
        probes,
        per_probe,
        procs,
        sparse: false,
        libbpf: true,
    }
}

const SHAPES: &[Shape] = &[
    shape(1, 1_000, 0),
    shape(1, 10_000, 0),
    shape(1, 10_000, 1),
    shape(1, 10_000, 16),
    shape(1, 10_000, 64),
    Shape {
        sparse: true,
        ..shape(1, 10_000, 0)
    },
    Shape {
        sparse: true,
        ..shape(1, 10_000, 16)
    },
    shape(1, 50_000, 0),
    shape(1, 50_000, 16),
    shape(100, 1, 0),
    Shape {
        libbpf: false,
        ..shape(1_000, 1, 0)
    },
    Shape {
        libbpf: false,
        ..shape(1_000, 50, 0)
    },
];

impl Shape {
    fn name(&self) -> String {
        format!(
            "{}x{}-sites-{}-procs{}",
            self.probes,
            self.per_probe,
            self.procs,
            if self.sparse { "-sparse" } else { "" }
        )
    }
}

fn attach(c: &mut Criterion) {
    if !usdtkit::sys::process::is_root() {
        eprintln!("benches/attach: skipped: attaching uprobes needs root");
        return;
    }
    let full = std::env::var_os("USDTKIT_BENCH_FULL").is_some();
    for s in SHAPES {
        let (dir, m) =
            scale_fixture(s.probes, s.per_probe, s.sparse).expect("scale fixture builds");
        let fx = &m.fixtures[0];
        let running: Vec<Waiting> = (0..s.procs)
            .map(|_| Waiting::start(&dir, fx).expect("fixture starts"))
            .collect();
        let binary = dir.join(&fx.binary);
        let mut impls = vec!["usdtkit", "kernel"];
        if s.libbpf || full {
            impls.insert(1, "libbpf");
        }
        let mut g = c.benchmark_group(format!("attach/{}", s.name()));
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_millis(100));
        for imp in impls {
            g.bench_function(BenchmarkId::new("attach", imp), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let t = measure(imp, &binary).expect("attach works");
                            assert!(t.links > 0, "{imp} attached nothing");
                            Duration::from_secs_f64(t.attach_ms / 1e3)
                        })
                        .sum()
                })
            });
            g.bench_function(BenchmarkId::new("detach", imp), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let t = measure(imp, &binary).expect("attach works");
                            Duration::from_secs_f64(t.detach_ms / 1e3)
                        })
                        .sum()
                })
            });
        }
        g.finish();
        drop(running);
    }
}

criterion_group!(benches, attach);
criterion_main!(benches);

//! Attach and detach latency (root only; skipped with a message otherwise): usdtkit (one
//! uprobe_multi link for the file), libbpf (`attach_usdt` per probe name) and the kernel's
//! floor (one raw uprobe_multi link over precomputed offsets), on generated fixtures with
//! running processes mapping them. Attach and detach are timed separately with
//! `iter_custom`. Larger shapes (K = 1,000 probe names, 50,000 sites): `usdtkit bench attach`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use usdtkit::bench::{measure, scale_fixture};
use usdtkit::check::run::Waiting;

/// (name, probes, sites per probe, processes, implementations)
const SHAPES: &[(&str, usize, usize, usize, &[&str])] = &[
    (
        "1-probe-1000-sites-0-procs",
        1,
        1000,
        0,
        &["usdtkit", "libbpf", "kernel"],
    ),
    (
        "1-probe-1000-sites-16-procs",
        1,
        1000,
        16,
        &["usdtkit", "libbpf", "kernel"],
    ),
    (
        "20-probes-1-site",
        20,
        1,
        0,
        &["usdtkit", "libbpf", "kernel"],
    ),
];

fn attach(c: &mut Criterion) {
    if !usdtkit::sys::process::is_root() {
        eprintln!("benches/attach: skipped: attaching uprobes needs root");
        return;
    }
    for (name, probes, per, procs, impls) in SHAPES {
        let (dir, m) = scale_fixture(*probes, *per, false).expect("scale fixture builds");
        let fx = &m.fixtures[0];
        let running: Vec<Waiting> = (0..*procs)
            .map(|_| Waiting::start(&dir, fx).expect("fixture starts"))
            .collect();
        let binary = dir.join(&fx.binary);
        let mut g = c.benchmark_group(format!("attach/{name}"));
        g.sample_size(10).warm_up_time(Duration::from_millis(100));
        for imp in *impls {
            g.bench_function(BenchmarkId::new("attach", imp), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let t = measure(imp, &binary).expect("attach works");
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

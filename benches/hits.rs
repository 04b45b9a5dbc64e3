//! Per-hit cost (root only; skipped with a message otherwise): a loop firing one probe at a
//! plain `nop` site and at a `nop; nop5` site, not attached, attached by usdtkit and attached
//! by libbpf (the recorder in count-only mode: every argument read, every hit counted and
//! checked). Throughput is hits per second.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use usdtkit::bench::hit_cost;

const HITS: u64 = 200_000;

fn hits(c: &mut Criterion) {
    if !usdtkit::sys::process::is_root() {
        eprintln!("benches/hits: skipped: attaching uprobes needs root");
        return;
    }
    let mut g = c.benchmark_group("hits");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .throughput(Throughput::Elements(HITS));
    for site in ["nop", "nop5"] {
        for imp in ["none", "usdtkit", "libbpf"] {
            g.bench_function(BenchmarkId::new(site, imp), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let r = hit_cost(imp, site, HITS).expect("every hit counted");
                            Duration::from_secs_f64(r.total_ms / 1e3)
                        })
                        .sum()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, hits);
criterion_main!(benches);

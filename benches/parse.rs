//! Parse-and-decode throughput: sites per second for real binaries (when installed) and
//! generated files up to 100,000 sites (also with every argument string distinct), against a
//! baseline that only walks the notes with `object` (`usdtkit::bench::parse::object_walk`).
//! Both sides are checked to see the same number of notes before timing. For ratios that hold
//! on a noisy machine, `usdtkit bench parse` times the two sides in alternating pairs.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use usdtkit::bench::parse::{object_walk, standard_inputs};
use usdtkit::UsdtFile;

fn usdtkit_parse(data: &[u8]) -> usize {
    let u = UsdtFile::parse(data).unwrap();
    assert!(u.errors().is_empty());
    u.sites().len()
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    let inputs = standard_inputs(|name, path, e| eprintln!("skipping {name}: {path}: {e}"));
    for (name, data) in inputs {
        let sites = object_walk(&data).unwrap();
        assert_eq!(
            usdtkit_parse(&data),
            sites,
            "{name}: usdtkit and object see different notes"
        );
        g.throughput(Throughput::Elements(sites as u64));
        g.bench_with_input(BenchmarkId::new("object-walk", &name), &data, |b, d| {
            b.iter(|| object_walk(black_box(d)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("usdtkit", &name), &data, |b, d| {
            b.iter(|| usdtkit_parse(black_box(d)))
        });
    }
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);

//! Values, not just shapes (issue 7): every cross-compiled fixture of the default corpus runs
//! under qemu-user, and each argument as usdtkit decoded it, evaluated on the emulated
//! registers and memory at the probe site (gdb-multiarch on qemu's gdb stub), must give the
//! manifest's value. A note that names the wrong register must show up as wrong values.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use usdtkit::check::impls::qemu::{GdbQemu, UsdtkitQemu};
use usdtkit::check::impls::Implementation;
use usdtkit::check::{self, Outcome};
use usdtkit::gen::{self, GenOptions, Manifest, Profile};

fn emulation() -> bool {
    let ok = UsdtkitQemu.detect();
    common::require(
        ok.is_ok(),
        &format!(
            "qemu-user and gdb-multiarch: {}",
            ok.err().unwrap_or_default()
        ),
    )
}

fn corpus(name: &str) -> (PathBuf, Manifest) {
    let out = std::env::temp_dir().join(format!("usdtkit-emu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let opts = GenOptions {
        seed: 3,
        profile: Profile::Default,
        out: out.clone(),
        progress: false,
    };
    let m = gen::generate(&opts).expect("default corpus");
    (out, m)
}

fn arch_of<'m>(m: &'m Manifest, fixture: &str) -> &'m str {
    m.fixtures
        .iter()
        .find(|f| f.name == fixture)
        .map_or("?", |f| f.arch.as_str())
}

/// Outcomes per architecture for one implementation.
fn per_arch(
    report: &check::report::Report,
    m: &Manifest,
    imp: &str,
) -> BTreeMap<String, BTreeMap<Outcome, usize>> {
    let arch: BTreeMap<&str, &str> = m
        .fixtures
        .iter()
        .map(|f| (f.name.as_str(), f.arch.as_str()))
        .collect();
    let mut out: BTreeMap<String, BTreeMap<Outcome, usize>> = BTreeMap::new();
    for r in report.rows.iter().filter(|r| r.implementation == imp) {
        *out.entry(arch[r.fixture.as_str()].to_string())
            .or_default()
            .entry(r.result.outcome)
            .or_default() += 1;
    }
    out
}

/// The first few results of one implementation on one architecture, for a failure message.
fn first_rows(report: &check::report::Report, m: &Manifest, imp: &str, arch: &str) -> Vec<String> {
    report
        .rows
        .iter()
        .filter(|r| r.implementation == imp && arch_of(m, &r.fixture) == arch)
        .take(5)
        .map(|r| format!("{} {:?}: {}", r.fixture, r.result.outcome, r.result.detail))
        .collect()
}

#[test]
fn decoded_arguments_give_the_manifest_values_under_qemu() {
    if !emulation() {
        return;
    }
    let (dir, m) = corpus("values");
    let cross: Vec<_> = m.fixtures.iter().filter(|f| f.emulator.is_some()).collect();
    let arches: BTreeSet<&str> = cross.iter().map(|f| f.arch.as_str()).collect();
    // Every cross compiler ci/setup.sh installs built its fixture.
    assert_eq!(
        cross.len(),
        8,
        "{:?}",
        cross.iter().map(|f| &f.name).collect::<Vec<_>>()
    );
    let imps: Vec<Box<dyn Implementation>> = vec![Box::new(UsdtkitQemu), Box::new(GdbQemu)];
    let opts = check::CheckOptions {
        limit: Duration::from_secs(120),
        ..check::CheckOptions::default()
    };
    let report = check::run_all(&dir, &m, &imps, &opts);
    let ours = per_arch(&report, &m, "usdtkit-qemu");
    assert_eq!(
        ours.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        arches
    );
    // Every architecture is checked by value (LoongArch, which Debian 12's gdb-multiarch
    // cannot debug, through the script's own remote-protocol client).
    for (arch, counts) in &ours {
        let passed = counts.get(&Outcome::Pass).copied().unwrap_or(0);
        assert!(
            passed >= 100,
            "{arch}: {counts:?}; first rows: {:?}",
            first_rows(&report, &m, "usdtkit-qemu", arch)
        );
        for bad in [Outcome::Wrong, Outcome::Missed, Outcome::Error] {
            assert!(!counts.contains_key(&bad), "{arch}: {counts:?}");
        }
    }
    // gcc's aarch64 `[x6, w1, sxtw]` (an `int` index, sign-extended) is read right: its
    // rows pass, and there are some.
    let sxtw: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.implementation == "usdtkit-qemu")
        .filter(|r| r.classes.iter().any(|c| c == "sib:index-sxtw"))
        .collect();
    assert!(!sxtw.is_empty(), "the aarch64 fixture has sxtw arguments");
    assert!(
        sxtw.iter().all(|r| r.result.outcome == Outcome::Pass),
        "{:?}",
        sxtw.iter().map(|r| &r.result).collect::<Vec<_>>()
    );
    // What is refused is refused for a reason the note itself gives: an 8-byte value in one
    // 32-bit register (arm register pairs), or an assembler-local label the symbol tables
    // do not have.
    for r in report
        .rows
        .iter()
        .filter(|r| r.implementation == "usdtkit-qemu")
    {
        if r.result.outcome == Outcome::Refused {
            let d = &r.result.detail;
            assert!(
                d.contains("-byte register: the rest of the value") || d.contains("symbol `.L"),
                "{} {}: {d}",
                r.fixture,
                r.result.probe
            );
        }
    }
    // gdb ran on every fixture too (its results are the report's business, not this test's),
    // except those of architectures it cannot debug, refused with that reason.
    let theirs = per_arch(&report, &m, "gdb-qemu");
    assert_eq!(theirs.len(), arches.len(), "{theirs:?}");
    for r in report
        .rows
        .iter()
        .filter(|r| r.implementation == "gdb-qemu")
    {
        if r.result.detail.starts_with("gdb-multiarch cannot debug") {
            assert_eq!(arch_of(&m, &r.fixture), "loongarch64");
        }
    }
    assert!(
        theirs.values().all(|c| !c.contains_key(&Outcome::Error)),
        "{theirs:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Replace the first occurrence of `from` in `path` by `to` (same length).
fn patch(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from:?} not in {}", path.display()));
    bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_note_naming_the_wrong_register_reads_wrong_values() {
    if !emulation() {
        return;
    }
    let (dir, m) = corpus("lie");
    // Through gdb (aarch64) and through the script's own remote-protocol client (loongarch64).
    for (arch, first_two, swapped) in [
        ("aarch64", "-1@x0 1@x1 ", "-1@x1 1@x0 "),
        ("loongarch64", "-1@$a0 1@$a1 ", "-1@$a1 1@$a0 "),
    ] {
        let fx = m
            .fixtures
            .iter()
            .find(|f| f.arch == arch)
            .unwrap_or_else(|| panic!("an {arch} fixture"));
        // The generator's `ints` probe passes eight values in the first argument registers
        // at -O2: swap the first two in the note's text, so that the note lies about where
        // the values are.
        let exe = dir.join(&fx.binary);
        let text = usdtkit::MappedFile::open(&exe).unwrap();
        let usdt = text.usdt().unwrap();
        let site = usdt
            .sites()
            .iter()
            .find(|s| s.name == "ints" && s.args_text.starts_with(first_two))
            .unwrap_or_else(|| panic!("{arch}: ints site with {first_two}: {:?}", usdt.sites()));
        let from = site.args_text.to_string();
        let to = from.replacen(first_two, swapped, 1);
        drop(usdt);
        drop(text);
        patch(&exe, &from, &to);
        let report = check::run_all(
            &dir,
            &Manifest {
                fixtures: vec![fx.clone()],
                ..m.clone()
            },
            &[Box::new(UsdtkitQemu) as Box<dyn Implementation>],
            &check::CheckOptions {
                limit: Duration::from_secs(120),
                ..check::CheckOptions::default()
            },
        );
        let count = |o: Outcome| report.rows.iter().filter(|r| r.result.outcome == o).count();
        assert!(
            count(Outcome::Pass) > 100,
            "{arch}: the rest still reads right"
        );
        let wrong: Vec<_> = report
            .rows
            .iter()
            .filter(|r| r.result.outcome == Outcome::Wrong)
            .map(|r| (r.result.probe.as_str(), r.result.arg))
            .collect();
        assert!(
            !wrong.is_empty(),
            "{arch}: the check must catch a lying note"
        );
        assert!(
            wrong
                .iter()
                .all(|(p, a)| *p == "usdtfix:ints" && (*a == 0 || *a == 1)),
            "{arch}: {wrong:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

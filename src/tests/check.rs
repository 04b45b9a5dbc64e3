//! The conformance harness against the real tools: adapters on the quick corpus, the
//! external-command protocol (working, crashing and hanging peers), a broken fixture, and the
//! report files.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use usdtkit::check::impls::{self, Implementation};
use usdtkit::check::{self, Outcome};
use usdtkit::gen::{self, GenOptions, Manifest, Profile};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn privileged() -> Option<std::sync::MutexGuard<'static, ()>> {
    let root = common::is_root();
    common::require(root, "root with BPF and uprobes")
        .then(|| SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}

fn corpus() -> &'static (PathBuf, Manifest) {
    static C: OnceLock<(PathBuf, Manifest)> = OnceLock::new();
    C.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("usdtkit-check-{}", std::process::id()));
        let opts = GenOptions {
            seed: 9,
            profile: Profile::Quick,
            out: out.clone(),
            progress: false,
        };
        (out.clone(), gen::generate(&opts).expect("quick corpus"))
    })
}

/// The gcc -O0 C fixture of the quick corpus.
fn c_fixture(m: &Manifest) -> &gen::Fixture {
    m.fixtures
        .iter()
        .find(|f| f.name.starts_with("c-gcc-O0"))
        .expect("the quick corpus has a gcc -O0 fixture")
}

fn counts(
    report: &check::report::Report,
    name: &str,
) -> std::collections::BTreeMap<Outcome, usize> {
    check::tally(
        report
            .rows
            .iter()
            .filter(|r| r.implementation == name)
            .map(|r| &r.result),
    )
}

#[test]
fn every_installed_adapter_on_the_quick_corpus() {
    let Some(_g) = privileged() else { return };
    let (dir, m) = corpus();
    let all = impls::all();
    for i in &all {
        let tool = match i.name().as_str() {
            "bpftrace" => Some("bpftrace"),
            "gdb" => Some("gdb"),
            _ => None,
        };
        if let Some(t) = tool {
            common::require(
                i.detect().is_ok(),
                &format!("{t} (ci/setup.sh installs it)"),
            );
        }
    }
    let report = check::run_all(dir, m, &all, Duration::from_secs(60), false);
    let ours = counts(&report, "usdtkit");
    assert!(ours[&Outcome::Pass] > 600, "{ours:?}");
    for bad in [Outcome::Wrong, Outcome::Missed, Outcome::Error] {
        assert!(!ours.contains_key(&bad), "usdtkit {bad:?}: {ours:?}");
        assert!(!counts(&report, "usdtkit-perf").contains_key(&bad));
    }
    // libbpf reads what it accepts right, refuses the rest with its own words, and writes
    // exactly the spec entries usdtkit computes.
    let lib = counts(&report, "libbpf");
    assert!(
        lib[&Outcome::Pass] > 300 && !lib.contains_key(&Outcome::Wrong),
        "{lib:?}"
    );
    assert!(report
        .rows
        .iter()
        .filter(|r| r.implementation == "libbpf" && r.result.outcome == Outcome::Refused)
        .all(|r| r.result.detail.starts_with("libbpf: usdt:")));
    let spec_notes: Vec<&String> = report
        .notes
        .iter()
        .filter(|n| n.0 == "libbpf")
        .map(|n| &n.2)
        .collect();
    assert!(!spec_notes.is_empty());
    assert!(
        spec_notes
            .iter()
            .all(|n| n.starts_with("spec entries identical")),
        "{spec_notes:?}"
    );
    // gdb reads most values directly; where it is wrong (64-bit immediates on i386) the
    // report says so.
    if let Some(g) = Some(counts(&report, "gdb")).filter(|g| !g.is_empty()) {
        assert!(g[&Outcome::Pass] > 300, "{g:?}");
    }
    // Nothing is left unexplained: every non-pass outcome has a reason or a value.
    for r in &report.rows {
        if matches!(r.result.outcome, Outcome::Refused | Outcome::Error) {
            assert!(!r.result.detail.is_empty(), "{r:?}");
        }
    }
    // The reports.
    let out = dir.join("report-test");
    report.write(&out).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| kind:sib |") && md.contains("libbpf"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<table>") && html.contains("class=\"pass\""));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(json["rows"].as_array().unwrap().len() > 1000);
}

fn script(name: &str, body: &str) -> String {
    let p = std::env::temp_dir().join(format!("usdtkit-ext-{name}-{}", std::process::id()));
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&p)
        .status()
        .unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn external_protocol_with_a_working_peer() {
    let Some(_g) = privileged() else { return };
    let (dir, m) = corpus();
    let fx = c_fixture(m);
    // A peer made of `usdtkit trace`, speaking the protocol: attach, say READY, print hits.
    let bin = env!("CARGO_BIN_EXE_usdtkit");
    let exe = dir.join(&fx.binary);
    let peer = script(
        "trace",
        &format!(
            r#"[ "$1" = --version ] && {{ echo "trace-peer 1"; exit 0; }}
pid=$2
exec {bin} trace --json --pid "$pid" {exe} 2>&1 | python3 -u -c '
import json, sys
for line in sys.stdin:
    if "attached" in line:
        print("READY", flush=True)
        continue
    if not line.startswith("{{"):
        continue
    h = json.loads(line)
    errs = {{e["arg"]: e["reason"] for e in h.get("errors", [])}}
    args = [{{"error": errs.get(i, "?")}} if a is None else ({{"float": a}} if isinstance(a, float) else {{"int": a}}) for i, a in enumerate(h["args"])]
    print(json.dumps({{"probe": h["provider"] + ":" + h["name"], "args": args}}), flush=True)
'"#,
            exe = exe.display()
        ),
    );
    let ext = impls::by_name(&format!("ext:{peer}")).unwrap();
    assert_eq!(ext.detect().unwrap(), "trace-peer 1");
    let run = ext.run(dir, fx, Duration::from_secs(30)).unwrap();
    let results = check::compare(fx, &run);
    let t = check::tally(&results);
    // The library's probes are not traced by this peer: missed; the executable's pass.
    assert!(t[&Outcome::Pass] > 100, "{t:?}");
    assert!(!t.contains_key(&Outcome::Wrong), "{t:?}");
}

#[test]
fn crashing_hanging_and_broken_cases_end_with_clear_outcomes() {
    let Some(_g) = privileged() else { return };
    let (dir, m) = corpus();
    let fx = c_fixture(m);
    let crash = impls::by_name(&format!(
        "ext:{}",
        script("crash", "echo 'segfault in probe parser' >&2; exit 139")
    ))
    .unwrap();
    let run = crash.run(dir, fx, Duration::from_secs(10)).unwrap();
    let r = check::compare(fx, &run);
    assert!(r
        .iter()
        .all(|r| r.outcome == Outcome::Refused && r.detail.contains("segfault")));

    let hang = impls::by_name(&format!("ext:{}", script("hang", "sleep 600"))).unwrap();
    let started = Instant::now();
    let run = hang.run(dir, fx, Duration::from_secs(3)).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a hanging peer is cut off"
    );
    assert!(check::compare(fx, &run)
        .iter()
        .all(|r| r.outcome != Outcome::Pass));

    // A fixture whose binary is gone: every argument an adapter error, with the path.
    let mut broken = fx.clone();
    broken.binary = "missing/prog".into();
    let mut m2 = m.clone();
    m2.fixtures = vec![broken];
    let only: Vec<Box<dyn Implementation>> = vec![impls::by_name("usdtkit").unwrap()];
    let report = check::run_all(dir, &m2, &only, Duration::from_secs(10), false);
    assert!(!report.rows.is_empty());
    assert!(report
        .rows
        .iter()
        .all(|r| r.result.outcome == Outcome::Error && r.result.detail.contains("missing/prog")));
}

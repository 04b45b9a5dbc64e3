//! The conformance harness against the real tools: every adapter on the quick corpus (each
//! peer in both Debian releases), narrowing whole-run refusals (a stand-in peer through the
//! external-command protocol, and bpftrace against itself one probe at a time), crashing and
//! hanging peers, a broken fixture, and the report and findings files.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use usdtkit::check::impls::{self, Implementation};
use usdtkit::check::{self, isolate, select, CheckOptions, Outcome};
use usdtkit::gen::{self, Manifest};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn privileged() -> Option<std::sync::MutexGuard<'static, ()>> {
    let root = common::is_root();
    common::require(root, "root with BPF and uprobes")
        .then(|| SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}

fn corpus() -> &'static (PathBuf, Manifest) {
    static C: OnceLock<(PathBuf, Manifest)> = OnceLock::new();
    C.get_or_init(|| common::quick_corpus("check", 9))
}

/// The gcc -O0 C fixture of the quick corpus.
fn c_fixture(m: &Manifest) -> &gen::Fixture {
    m.fixtures
        .iter()
        .find(|f| f.name.starts_with("c-gcc-O0"))
        .expect("the quick corpus has a gcc -O0 fixture")
}

fn one(name: &str) -> Box<dyn Implementation> {
    impls::by_name(name).into_iter().next().expect(name)
}

fn counts(report: &check::report::Report, column: &str) -> BTreeMap<Outcome, usize> {
    check::tally(
        report
            .rows
            .iter()
            .filter(|r| r.implementation == column)
            .map(|r| &r.result),
    )
}

/// The column whose name starts with `tool ` and whose implementation runs in `env`.
fn column(report: &check::report::Report, id: &str) -> String {
    report
        .implementations
        .iter()
        .find(|i| i.id == id)
        .map(|i| i.name.clone())
        .unwrap_or_else(|| panic!("no implementation {id}"))
}

#[test]
fn every_installed_adapter_on_the_quick_corpus() {
    let Some(_g) = privileged() else { return };
    let (dir, m) = corpus();
    let all = impls::all();
    for i in &all {
        let id = i.name();
        if id.ends_with("-qemu") || id.starts_with("usdtkit") || id == "libbpf" {
            continue;
        }
        // ci/setup.sh installs each peer (bcc's headers, the Debian 13 root included).
        let found = i.detect();
        common::require(found.is_ok(), &format!("{id}: {found:?}"));
    }
    let report = check::run_all(dir, m, &all, &CheckOptions::default());
    for ours in ["usdtkit", "usdtkit-perf", "usdtkit-exec"] {
        let t = counts(&report, ours);
        assert!(t[&Outcome::Pass] > 600, "{ours}: {t:?}");
        for bad in [Outcome::Wrong, Outcome::Missed, Outcome::Error] {
            assert!(!t.contains_key(&bad), "{ours} {bad:?}: {t:?}");
        }
    }
    // libbpf reads what it accepts right, refuses the rest with its own words, and writes
    // exactly the spec entries usdtkit computes.
    let lib = column(&report, "libbpf");
    let t = counts(&report, &lib);
    assert!(
        t[&Outcome::Pass] > 300 && !t.contains_key(&Outcome::Wrong),
        "{t:?}"
    );
    assert!(report
        .rows
        .iter()
        .filter(|r| r.implementation == lib && r.result.outcome == Outcome::Refused)
        .all(|r| r.result.detail.starts_with("libbpf: usdt:")));
    let spec_notes: Vec<&String> = report
        .notes
        .iter()
        .filter(|n| n.0 == lib)
        .map(|n| &n.2)
        .collect();
    assert!(!spec_notes.is_empty());
    assert!(
        spec_notes
            .iter()
            .all(|n| n.starts_with("spec entries identical")),
        "{spec_notes:?}"
    );
    // Every peer available here is judged argument by argument: none is all-refused.
    for i in report
        .implementations
        .iter()
        .filter(|i| i.version.is_some())
    {
        let t = counts(&report, &i.name);
        if t.is_empty() {
            continue;
        }
        assert!(
            t.get(&Outcome::Pass).copied().unwrap_or(0) > 50,
            "{}: {t:?}",
            i.name
        );
    }
    // bpftrace reads `sym(%rip)` operands from the code bytes at the site: wrong values,
    // not refusals.
    for b in report
        .implementations
        .iter()
        .filter(|i| i.id.starts_with("bpftrace") && i.version.is_some())
    {
        assert!(report.rows.iter().any(|r| r.implementation == b.name
            && r.result.outcome == Outcome::Wrong
            && r.classes.iter().any(|c| c == "symbol:sym(%rip)")));
    }
    // perf prints 8-bit signed values unsigned.
    for p in report
        .implementations
        .iter()
        .filter(|i| i.id.starts_with("perf") && i.version.is_some())
    {
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.0 == p.name && n.2.contains("where the kernel recorded")),
            "{}",
            p.name
        );
    }
    // Each version is a column of its own, named from the version the tool reports.
    let names: Vec<&str> = report
        .implementations
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    for tool in ["bpftrace", "bcc", "gdb", "perf"] {
        let n = names
            .iter()
            .filter(|n| n.starts_with(&format!("{tool} ")))
            .count();
        assert!(n >= 1, "{tool}: {names:?}");
        if common::strict() {
            assert_eq!(n, 2, "{tool} from Debian 12 and 13: {names:?}");
        }
    }
    // Nothing is left unexplained: every non-pass outcome has a reason or a value.
    for r in &report.rows {
        if matches!(r.result.outcome, Outcome::Refused | Outcome::Error) {
            assert!(!r.result.detail.is_empty(), "{r:?}");
        }
    }
    // The reports and the findings, each finding with a command that reruns it.
    let out = dir.join("report-test");
    report.write(&out, m).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| kind:sib |") && md.contains(&lib), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<table>") && html.contains("class=\"pass\""));
    assert!(html.contains("href=\"#F1\"") && html.contains("id=\"F1\""));
    let findings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("findings.json")).unwrap()).unwrap();
    let findings = findings.as_array().unwrap();
    assert!(findings.len() > 10);
    for f in findings {
        let cmd = f["example"]["command"].as_str().unwrap();
        assert!(cmd.is_empty() || cmd.contains("--probe"), "{f}");
    }
    assert!(std::fs::read_to_string(out.join("findings.md"))
        .unwrap()
        .contains("reads wrong values"));
}

fn script(name: &str, body: &str) -> String {
    let p = std::env::temp_dir().join(format!("usdtkit-ext-{name}-{}", std::process::id()));
    std::fs::write(&p, body).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&p)
        .status()
        .unwrap();
    p.to_string_lossy().into_owned()
}

/// A stand-in peer made of `usdtkit trace`, speaking the protocol: it refuses the whole
/// fixture when it is asked for a probe named `refuse`, refuses the library's probes one by
/// one (`REFUSED`), and reads the others.
fn stand_in(refuse: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_usdtkit");
    script(
        "standin",
        &format!(
            r#"#!/usr/bin/python3 -u
import json, subprocess, sys
if sys.argv[1] == "--version":
    print("stand-in 1"); sys.exit(0)
pid, probes = sys.argv[2], json.loads(sys.argv[4])
exe = [p for p in probes if "libusdtfix" not in p[0]]
for p in probes:
    if "libusdtfix" in p[0]:
        print("REFUSED %s:%s this stand-in reads the executable only" % (p[1], p[2]))
    if p[2] == "{refuse}":
        print("stand-in: cannot parse the notes of probe %s:%s" % (p[1], p[2]), file=sys.stderr)
        sys.exit(1)
wanted = set("%s:%s" % (p[1], p[2]) for p in exe)
t = subprocess.Popen(["{bin}", "trace", "--json", "--pid", pid, exe[0][0]],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
for line in t.stderr:
    if "attached" in line:
        break
print("READY")
for line in t.stdout:
    h = json.loads(line)
    key = h["provider"] + ":" + h["name"]
    if key not in wanted:
        continue
    errs = {{e["arg"]: e["reason"] for e in h.get("errors", [])}}
    args = [{{"error": errs.get(i, "?")}} if a is None else ({{"float": a}} if isinstance(a, float) else {{"int": a}}) for i, a in enumerate(h["args"])]
    print(json.dumps({{"probe": key, "args": args}}))
"#
        ),
    )
}

#[test]
fn a_peer_refusing_the_whole_binary_because_of_one_probe_gets_the_others_judged() {
    let Some(_g) = privileged() else { return };
    let (dir, m) = corpus();
    let fx = c_fixture(m);
    let ext = one(&format!("ext:{}", stand_in("misc")));
    assert_eq!(ext.detect().unwrap(), "stand-in 1");
    let judged = isolate::judge(ext.as_ref(), dir, fx, Duration::from_secs(30));
    let by_probe = |p: &str| {
        judged
            .results
            .iter()
            .filter(|r| r.probe == p)
            .map(|r| r.outcome)
            .collect::<Vec<_>>()
    };
    // The probe it cannot take: refused in its words, and blamed for the whole refusal.
    assert!(judged
        .results
        .iter()
        .filter(|r| r.probe == "usdtfix:misc")
        .all(|r| r.outcome == Outcome::Refused && r.detail.contains("cannot parse")));
    assert_eq!(judged.blames.len(), 1, "{:?}", judged.blames);
    assert_eq!(judged.blames[0].probe, "usdtfix:misc");
    assert!(judged.blames[0].whole.contains("cannot parse"));
    // The library's probes: refused one by one, in its words.
    assert!(judged
        .results
        .iter()
        .filter(|r| r.probe.starts_with("usdtfix_lib"))
        .all(|r| r.outcome == Outcome::Refused && r.detail.contains("executable only")));
    // Every other probe of the executable is read.
    let t = check::tally(&judged.results);
    assert!(t[&Outcome::Pass] > 100, "{t:?}");
    assert!(
        !t.contains_key(&Outcome::Wrong) && !t.contains_key(&Outcome::Missed),
        "{t:?}"
    );
    assert!(by_probe("usdtfix:ints").iter().all(|o| *o == Outcome::Pass));
    // Narrowed by halves: a few runs, not one per probe.
    assert!(judged.runs <= 12, "{} runs", judged.runs);
}

/// Judging a fixture whole gives, argument by argument, what judging it one probe at a
/// time gives: the narrowing neither hides nor invents a verdict.
#[test]
fn bpftrace_judged_whole_matches_bpftrace_one_probe_at_a_time() {
    let Some(_g) = privileged() else { return };
    let b = one("bpftrace@host");
    if !common::require(b.detect().is_ok(), "bpftrace (ci/setup.sh installs it)") {
        return;
    }
    let (dir, m) = corpus();
    let fx = c_fixture(m);
    let shapes = select::shapes(dir, fx).unwrap();
    let whole = isolate::judge(b.as_ref(), dir, fx, Duration::from_secs(30));
    let keys: std::collections::BTreeSet<String> = shapes.iter().map(|s| s.key()).collect();
    let mut alone = Vec::new();
    for k in keys {
        let key = [k];
        let j = isolate::judge_with(
            b.as_ref(),
            dir,
            fx,
            &shapes,
            Some(&key),
            Duration::from_secs(30),
        );
        alone.extend(j.results);
    }
    alone.sort_by_key(|r| (r.hit, r.arg));
    let key = |r: &check::ArgResult| (r.hit, r.arg);
    assert_eq!(
        whole.results.iter().map(key).collect::<Vec<_>>(),
        alone.iter().map(key).collect::<Vec<_>>()
    );
    // bpftrace itself is not deterministic on some probes (it sometimes aborts on an
    // assertion reading a semaphore-guarded probe's argument, sometimes reads it): a verdict
    // that differs is run alone again, and only one that never matches is a difference of
    // the harness's making.
    let differ: Vec<_> = whole
        .results
        .iter()
        .zip(&alone)
        .filter(|(w, a)| w.outcome != a.outcome)
        .filter(|(w, _)| {
            let probe = [w.probe.clone()];
            !(0..3).any(|_| {
                isolate::judge_with(
                    b.as_ref(),
                    dir,
                    fx,
                    &shapes,
                    Some(&probe),
                    Duration::from_secs(30),
                )
                .results
                .iter()
                .any(|r| (r.hit, r.arg) == (w.hit, w.arg) && r.outcome == w.outcome)
            })
        })
        .collect();
    assert!(differ.is_empty(), "{differ:#?}");
    // bpftrace reads most arguments, and refuses some (argument 6 and up on x86-64).
    let t = check::tally(&whole.results);
    assert!(
        t[&Outcome::Pass] > 50 && t.contains_key(&Outcome::Refused),
        "{t:?}"
    );
}

#[test]
fn crashing_hanging_and_broken_cases_end_with_clear_outcomes() {
    let Some(_g) = privileged() else { return };
    let (dir, m) = corpus();
    let fx = c_fixture(m);
    let crash = one(&format!(
        "ext:{}",
        script(
            "crash",
            "#!/bin/sh\necho 'segfault in probe parser' >&2; exit 139\n"
        )
    ));
    let r = isolate::judge(crash.as_ref(), dir, fx, Duration::from_secs(10));
    assert!(r
        .results
        .iter()
        .all(|r| r.outcome == Outcome::Refused && r.detail.contains("segfault")));

    let hang = one(&format!("ext:{}", script("hang", "#!/bin/sh\nsleep 600\n")));
    let started = Instant::now();
    let shapes = select::shapes(dir, fx).unwrap();
    let sel = select::Selection::all(&shapes);
    let run = hang.run(dir, fx, &sel, Duration::from_secs(3)).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a hanging peer is cut off"
    );
    assert!(check::compare(fx, &run, Some(&sel))
        .iter()
        .all(|r| r.outcome != Outcome::Pass));

    // A fixture whose binary is gone: every argument an adapter error, with the path.
    let mut broken = fx.clone();
    broken.binary = "missing/prog".into();
    for h in &mut broken.hits {
        h.object = "missing/prog".into();
    }
    let mut m2 = m.clone();
    m2.fixtures = vec![broken];
    let only: Vec<Box<dyn Implementation>> = vec![one("usdtkit")];
    let opts = CheckOptions {
        limit: Duration::from_secs(10),
        ..CheckOptions::default()
    };
    let report = check::run_all(dir, &m2, &only, &opts);
    assert!(!report.rows.is_empty());
    assert!(report
        .rows
        .iter()
        .all(|r| r.result.outcome == Outcome::Error && r.result.detail.contains("missing/prog")));
}

/// Thousands of sites in one attach (planned straight from the notes on two threads, specs
/// written through a mapping of the map, hit records built during the link): every value
/// still right.
#[test]
fn a_scale_fixture_of_thousands_of_unique_sites_reads_right() {
    let Some(_g) = privileged() else { return };
    let out = std::env::temp_dir().join(format!("usdtkit-check-scale-{}", std::process::id()));
    let m = gen::generate(&gen::GenOptions {
        seed: 3,
        profile: gen::Profile::Scale {
            probes: 100,
            sites: 60,
            sparse: false,
        },
        out: out.clone(),
        progress: false,
    })
    .expect("the scale fixture builds");
    let sites: usize = m.fixtures.iter().map(|f| f.hits.len()).sum();
    assert!(sites >= 6000, "{sites} hits expected");
    let report = check::run_all(&out, &m, &[one("usdtkit")], &CheckOptions::default());
    let tally = counts(&report, "usdtkit");
    assert_eq!(
        tally.keys().copied().collect::<Vec<_>>(),
        vec![Outcome::Pass],
        "{tally:?}"
    );
    std::fs::remove_dir_all(&out).ok();
}

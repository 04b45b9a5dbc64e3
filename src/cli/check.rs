//! `usdtkit check`: implementations on the fixture corpus, as a matrix report.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use usdtkit::check::{self, impls, Outcome};
use usdtkit::gen::{self, GenOptions, Manifest, Profile};

/// Options of `check`.
#[derive(Debug, Clone)]
pub(super) struct CheckArgs {
    pub corpus: Option<PathBuf>,
    pub profile: Profile,
    pub seed: u64,
    pub impls: Vec<String>,
    pub fixtures: Vec<String>,
    pub probes: Vec<String>,
    pub jobs: usize,
    pub report: Option<PathBuf>,
    pub json: bool,
    pub verbose: bool,
}

fn corpus(a: &CheckArgs) -> Result<(PathBuf, Manifest), String> {
    let dir = a
        .corpus
        .clone()
        .unwrap_or_else(|| gen::default_out_dir(&a.profile, a.seed));
    match Manifest::load(&dir) {
        Ok(m) => Ok((dir, m)),
        Err(_) if a.corpus.is_none() => {
            eprintln!(
                "usdtkit check: building the {} corpus in {}",
                a.profile.name(),
                dir.display()
            );
            let opts = GenOptions {
                seed: a.seed,
                profile: a.profile.clone(),
                out: dir.clone(),
                progress: std::io::stderr().is_terminal(),
            };
            gen::generate(&opts)
                .map(|m| (dir, m))
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Run the check; true when usdtkit read every argument it accepts right (no wrong value,
/// missed hit or adapter error for `usdtkit`, `usdtkit-perf` or `usdtkit-qemu`).
pub(super) fn run(a: CheckArgs) -> bool {
    let (dir, manifest) = match corpus(&a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("usdtkit check: {e}");
            return false;
        }
    };
    let mut chosen: Vec<Box<dyn impls::Implementation>> = Vec::new();
    for name in &a.impls {
        let found = impls::by_name(name);
        if found.is_empty() {
            let known: Vec<String> = impls::all().iter().map(|i| i.name()).collect();
            eprintln!(
                "usdtkit check: unknown implementation `{name}` (known: {}, TOOL@host, all, ext:COMMAND)",
                known.join(", ")
            );
            return false;
        }
        for i in found {
            if !chosen.iter().any(|c| c.name() == i.name()) {
                chosen.push(i);
            }
        }
    }
    for f in &a.fixtures {
        if !manifest.fixtures.iter().any(|x| &x.name == f) {
            eprintln!(
                "usdtkit check: no fixture `{f}` in {} (`usdtkit gen --stats {}` lists them)",
                dir.display(),
                dir.display()
            );
            return false;
        }
    }
    let opts = check::CheckOptions {
        limit: Duration::from_secs(60),
        progress: std::io::stderr().is_terminal(),
        fixtures: (!a.fixtures.is_empty()).then(|| a.fixtures.clone()),
        probes: (!a.probes.is_empty()).then(|| a.probes.clone()),
        jobs: a.jobs,
    };
    let report = check::run_all(&dir, &manifest, &chosen, &opts);
    let out = a.report.clone().unwrap_or_else(|| dir.join("report"));
    if let Err(e) = report.write(&out, &manifest) {
        eprintln!("usdtkit check: {e}");
        return false;
    }
    for i in &report.implementations {
        if let Some(why) = &i.unavailable {
            eprintln!("usdtkit check: {} not run: {why}", i.name);
        }
    }
    let mut totals: BTreeMap<&str, BTreeMap<Outcome, usize>> = BTreeMap::new();
    for r in &report.rows {
        *totals
            .entry(&r.implementation)
            .or_default()
            .entry(r.result.outcome)
            .or_default() += 1;
        let show =
            r.result.outcome == Outcome::Wrong || (a.verbose && r.result.outcome != Outcome::Pass);
        if show && !a.json {
            println!(
                "{} {} hit {} {} arg {}: {} (expected {:?}, observed {:?}) {}",
                r.implementation,
                r.fixture,
                r.result.hit,
                r.result.probe,
                r.result.arg,
                r.result.outcome.name(),
                r.result.expected,
                r.result.observed,
                r.result.detail
            );
        }
    }
    if a.json {
        println!("{}", serde_json::to_string(&report).expect("json"));
    } else {
        for (name, t) in &totals {
            let line: Vec<String> = Outcome::ALL
                .iter()
                .map(|o| format!("{} {}", o.name(), t.get(o).unwrap_or(&0)))
                .collect();
            println!("{name:<16} {}", line.join(", "));
        }
        eprintln!(
            "usdtkit check: {} runs; report in {}/report.{{md,html,json}}, findings in {}/findings.{{md,json}}",
            report.runs,
            out.display(),
            out.display()
        );
    }
    // usdtkit in every form: both attach paths, and its decoding under emulation.
    !totals.iter().any(|(name, t)| {
        name.starts_with("usdtkit")
            && [Outcome::Wrong, Outcome::Missed, Outcome::Error]
                .iter()
                .any(|o| t.contains_key(o))
    })
}

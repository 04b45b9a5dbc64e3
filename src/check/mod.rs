//! The conformance harness: implementations run on the same fixtures, each argument judged
//! against the manifest, gathered into a report.

pub mod compare;
pub mod impls;
pub mod report;
pub mod run;

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub use self::compare::{compare, tally, ArgResult, Observed, ObservedHit, Outcome, Run};
use self::impls::Implementation;
use self::report::{ImplInfo, Report, Row};
use crate::gen::Manifest;

/// Run every implementation on every fixture of the corpus in `dir` that it runs (those of
/// this machine's architecture, or foreign ones under emulation). An
/// implementation that is not installed is listed with the reason; a fixture an adapter
/// fails on gives `error` for each of its arguments, with the adapter's error.
pub fn run_all(
    dir: &Path,
    manifest: &Manifest,
    implementations: &[Box<dyn Implementation>],
    limit: Duration,
    progress: bool,
) -> Report {
    let infos: Vec<ImplInfo> = implementations
        .iter()
        .map(|i| match i.detect() {
            Ok(v) => ImplInfo {
                name: i.name(),
                version: Some(v),
                unavailable: None,
            },
            Err(e) => ImplInfo {
                name: i.name(),
                version: None,
                unavailable: Some(e),
            },
        })
        .collect();
    let mut report = Report::new(manifest, infos.clone());
    let jobs: usize = implementations
        .iter()
        .zip(&infos)
        .filter(|(_, info)| info.version.is_some())
        .map(|(imp, _)| manifest.fixtures.iter().filter(|f| imp.runs(f)).count())
        .sum();
    let bar = if progress {
        ProgressBar::new(jobs as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("checking {bar:30} {pos}/{len} {msg}").expect("template"),
    );
    for fx in &manifest.fixtures {
        let classes = report::classes(dir, fx);
        for (imp, info) in implementations.iter().zip(&infos) {
            if info.version.is_none() || !imp.runs(fx) {
                continue;
            }
            bar.set_message(format!("{} {}", info.name, fx.name));
            let results = match imp.run(dir, fx, limit) {
                Ok(run) => {
                    for n in &run.notes {
                        report
                            .notes
                            .push((info.name.clone(), fx.name.clone(), n.clone()));
                    }
                    compare(fx, &run)
                }
                Err(e) => errors(fx, &e.to_string()),
            };
            for r in results {
                let cls = classes
                    .get(&(r.probe.clone(), r.arg))
                    .cloned()
                    .unwrap_or_default();
                report.rows.push(Row {
                    implementation: info.name.clone(),
                    fixture: fx.name.clone(),
                    result: r,
                    classes: cls,
                });
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    report
}

/// Every expected argument of `fx` as an adapter error.
fn errors(fx: &crate::gen::Fixture, why: &str) -> Vec<ArgResult> {
    let mut v = Vec::new();
    for (i, h) in fx.hits.iter().enumerate() {
        for a in 0..h.args.len().max(1) {
            v.push(ArgResult {
                hit: i,
                probe: format!("{}:{}", h.provider, h.name),
                arg: a,
                expected: h.args.get(a).cloned(),
                observed: None,
                outcome: Outcome::Error,
                detail: why.to_string(),
            });
        }
    }
    v
}

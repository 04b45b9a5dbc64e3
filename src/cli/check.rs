//! `usdtkit check`: implementations on the fixture corpus.

use std::path::PathBuf;
use std::time::Duration;

use usdtkit::check::{self, Outcome};
use usdtkit::gen::{self, GenOptions, Manifest, Profile};
use usdtkit::recorder::RecorderOptions;

/// Options of `check`.
#[derive(Debug, Clone)]
pub(super) struct CheckArgs {
    pub corpus: Option<PathBuf>,
    pub profile: Profile,
    pub seed: u64,
    pub impls: Vec<String>,
    pub verbose: bool,
}

/// Run the check; true when usdtkit read every argument it accepts right.
pub(super) fn run(a: CheckArgs) -> bool {
    let dir = a
        .corpus
        .clone()
        .unwrap_or_else(|| gen::default_out_dir(&a.profile, a.seed));
    let manifest = match Manifest::load(&dir) {
        Ok(m) => m,
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
                progress: true,
            };
            match gen::generate(&opts) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("usdtkit check: {e}");
                    return false;
                }
            }
        }
        Err(e) => {
            eprintln!("usdtkit check: {e}");
            return false;
        }
    };
    let mut ok = true;
    for imp in &a.impls {
        if imp != "usdtkit" {
            eprintln!("usdtkit check: unknown implementation `{imp}`");
            return false;
        }
        let mut total = std::collections::BTreeMap::new();
        for fx in manifest.fixtures.iter().filter(|f| f.runnable) {
            let results = match check::usdtkit::run(
                &dir,
                fx,
                RecorderOptions::default(),
                Duration::from_secs(30),
            ) {
                Ok((hits, stdout)) => check::compare(fx, &hits, &stdout),
                Err(e) => {
                    eprintln!("{}: error: {e}", fx.name);
                    ok = false;
                    continue;
                }
            };
            let t = check::tally(&results);
            for (k, v) in &t {
                *total.entry(*k).or_insert(0) += v;
            }
            let line: Vec<String> = Outcome::ALL
                .iter()
                .map(|o| format!("{} {}", o.name(), t.get(o).unwrap_or(&0)))
                .collect();
            println!("{imp} {:<24} {}", fx.name, line.join(", "));
            for r in results.iter().filter(|r| {
                r.outcome != Outcome::Pass && (a.verbose || r.outcome == Outcome::Wrong)
            }) {
                println!(
                    "  {} hit {} {} arg {}: expected {:?}, observed {:?} {}",
                    r.outcome.name(),
                    r.hit,
                    r.probe,
                    r.arg,
                    r.expected,
                    r.observed,
                    r.detail
                );
            }
            if t.contains_key(&Outcome::Wrong)
                || t.contains_key(&Outcome::Missed)
                || t.contains_key(&Outcome::Error)
            {
                ok = false;
            }
        }
        let line: Vec<String> = Outcome::ALL
            .iter()
            .map(|o| format!("{} {}", o.name(), total.get(o).unwrap_or(&0)))
            .collect();
        println!("{imp} total: {}", line.join(", "));
    }
    ok
}

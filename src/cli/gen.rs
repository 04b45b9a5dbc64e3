//! `usdtkit gen`: build the fixture corpus, or count the encodings of a built one.

use std::io::IsTerminal;
use std::path::PathBuf;

use usdtkit::gen::{self, stats, GenOptions, Profile};

/// Run `gen`; returns false on failure.
pub(super) fn run(
    seed: u64,
    profile: Profile,
    out: Option<PathBuf>,
    stats_dir: Option<PathBuf>,
    json: bool,
) -> bool {
    if let Some(dir) = stats_dir {
        return report(&dir, json);
    }
    let out = out.unwrap_or_else(|| gen::default_out_dir(&profile, seed));
    let opts = GenOptions {
        seed,
        profile,
        out: out.clone(),
        progress: std::io::stderr().is_terminal(),
    };
    let started = std::time::Instant::now();
    match gen::generate(&opts) {
        Ok(m) => {
            let hits: usize = m.fixtures.iter().map(|f| f.hits.len()).sum();
            eprintln!(
                "usdtkit gen: {} fixtures, {hits} expected hits, in {} ({:.1} s)",
                m.fixtures.len(),
                out.join("manifest.json").display(),
                started.elapsed().as_secs_f64()
            );
            report(&out, json)
        }
        Err(e) => {
            eprintln!("usdtkit gen: {e}");
            false
        }
    }
}

/// Print the corpus statistics; false when a default-profile corpus lacks a required form.
fn report(dir: &std::path::Path, json: bool) -> bool {
    let s = match stats::collect(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("usdtkit gen --stats: {e}");
            return false;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).expect("stats serialise")
        );
    } else {
        print!("{}", s.render());
    }
    let default = gen::Manifest::load(dir).is_ok_and(|m| m.profile == "default");
    !default || s.missing().is_empty()
}

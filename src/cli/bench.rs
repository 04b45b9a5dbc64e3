//! `usdtkit bench attach`, `hits` and `parse`.

use std::path::PathBuf;

use usdtkit::bench::{self, parse::ParseRatio, AttachBench, Spread};

/// Run the attach comparison and print each implementation's times and the ratios to usdtkit
/// (medians over the rounds, with quartiles when there are several).
pub(super) fn attach(b: AttachBench, json: bool) -> bool {
    let rounds = b.rounds.max(1);
    let t = match bench::run(&b, |k, n| {
        if n > 1 {
            eprint!("\rround {k}/{n}");
        }
    }) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("\rusdtkit bench attach: {e}");
            return false;
        }
    };
    if rounds > 1 {
        eprintln!();
    }
    if json {
        println!("{}", serde_json::to_string(&t).expect("json"));
        return true;
    }
    println!(
        "{} sites in {} probes, {} processes, {} layout, {} round{}",
        b.sites,
        b.probes,
        b.procs,
        if b.sparse { "sparse" } else { "dense" },
        rounds,
        if rounds == 1 { "" } else { "s (medians)" }
    );
    println!(
        "{:<10} {:>12} {:>12} {:>7} {:>20} {:>20}",
        "impl", "attach ms", "detach ms", "links", "attach / usdtkit", "detach / usdtkit"
    );
    let show = |s: Option<Spread>| match s {
        None => "-".to_string(),
        Some(s) if rounds == 1 => format!("{:.2}", s.median),
        Some(s) => format!("{:.2} ({:.2}-{:.2})", s.median, s.q1, s.q3),
    };
    for x in &t {
        println!(
            "{:<10} {:>12.2} {:>12.2} {:>7} {:>20} {:>20}",
            x.implementation,
            x.attach_ms,
            x.detach_ms,
            x.links,
            show(x.attach_vs_usdtkit),
            show(x.detach_vs_usdtkit)
        );
    }
    true
}

/// Run the per-hit comparison.
pub(super) fn hits(iterations: u64, json: bool) -> bool {
    let mut rows = Vec::new();
    for site in ["nop", "nop5"] {
        for imp in ["none", "usdtkit", "libbpf"] {
            match bench::hit_cost(imp, site, iterations) {
                Ok(r) => rows.push(r),
                Err(e) => {
                    eprintln!("usdtkit bench hits: {imp} at {site}: {e}");
                    return false;
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string(&rows).expect("json"));
        return true;
    }
    println!("{iterations} hits per run");
    println!(
        "{:<6} {:<8} {:>10} {:>10} {:>14}",
        "site", "impl", "total ms", "ns/hit", "ns/hit - none"
    );
    for r in &rows {
        let base = rows
            .iter()
            .find(|b| b.site == r.site && b.implementation == "none")
            .map_or(0.0, |b| b.ns_per_hit);
        println!(
            "{:<6} {:<8} {:>10.1} {:>10.1} {:>14.1}",
            r.site,
            r.implementation,
            r.total_ms,
            r.ns_per_hit,
            r.ns_per_hit - base
        );
    }
    true
}

/// What `usdtkit bench parse` does with its inputs.
pub(super) enum ParseHow {
    /// Time both sides in pairs and print the ratios.
    Compare { rounds: usize, json: bool },
    /// Run one side this many times over each input, untimed.
    Repeat(u32, super::ParseSide),
}

/// Run the parse comparison (or one side, repeated) over `files` or the standard inputs,
/// keeping only the input named `only` when given; in a comparison each row is printed as it
/// is measured.
pub(super) fn parse(files: &[PathBuf], only: Option<&str>, how: ParseHow) -> bool {
    let mut ok = true;
    let mut inputs: Vec<(String, Vec<u8>)> = if files.is_empty() {
        if only.is_none() {
            eprintln!("generating the inputs (up to 100,000 sites)...");
        }
        bench::parse::standard_inputs_named(
            |name| only.is_none_or(|o| o == name),
            |name, path, e| eprintln!("usdtkit bench parse: skipping {name}: {path}: {e}"),
        )
    } else {
        let mut v = Vec::new();
        for f in files {
            match std::fs::read(f) {
                Ok(bytes) => v.push((f.display().to_string(), bytes)),
                Err(e) => {
                    eprintln!("usdtkit bench parse: {}: {e}", f.display());
                    ok = false;
                }
            }
        }
        v
    };
    if let Some(only) = only {
        inputs.retain(|(name, _)| name == only);
        if inputs.is_empty() {
            eprintln!("usdtkit bench parse: no input named {only}");
            return false;
        }
    }
    let (rounds, json) = match how {
        ParseHow::Compare { rounds, json } => (rounds, json),
        ParseHow::Repeat(n, side) => {
            for (name, data) in &inputs {
                let run = match side {
                    super::ParseSide::Walk => bench::parse::repeat_walk,
                    super::ParseSide::Usdtkit => bench::parse::repeat_parse,
                };
                if let Err(e) = run(data, n) {
                    eprintln!("usdtkit bench parse: {name}: {e}");
                    ok = false;
                }
            }
            return ok;
        }
    };
    if !json {
        println!("{rounds} rounds per input; ratio: median of usdtkit / walk per round");
        println!(
            "{:<28} {:>8} {:>12} {:>12} {:>7} {:>13}",
            "input", "sites", "walk µs", "usdtkit µs", "ratio", "quartiles"
        );
    }
    let mut rows: Vec<ParseRatio> = Vec::new();
    for (name, data) in &inputs {
        if json {
            eprintln!("measuring {name}...");
        }
        match bench::parse::compare(name, data, rounds) {
            Ok(r) => {
                if !json {
                    println!(
                        "{:<28} {:>8} {:>12.2} {:>12.2} {:>6.2}x {:>6.2}-{:<6.2}",
                        r.input,
                        r.sites,
                        r.walk_us,
                        r.usdtkit_us,
                        r.ratio,
                        r.ratio_quartiles.0,
                        r.ratio_quartiles.1
                    );
                }
                rows.push(r);
            }
            Err(e) => {
                eprintln!("usdtkit bench parse: {name}: {e}");
                ok = false;
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string(&rows).expect("json"));
    }
    ok
}

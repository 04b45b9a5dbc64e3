//! `usdtkit bench attach`.

use usdtkit::bench::{self, AttachBench};

/// Run the attach comparison and print each implementation's times and the ratios to usdtkit.
pub(super) fn attach(b: AttachBench, json: bool) -> bool {
    let t = match bench::run(&b) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("usdtkit bench attach: {e}");
            return false;
        }
    };
    if json {
        println!("{}", serde_json::to_string(&t).expect("json"));
        return true;
    }
    println!(
        "{} sites in {} probes, {} processes, {} layout",
        b.sites,
        b.probes,
        b.procs,
        if b.sparse { "sparse" } else { "dense" }
    );
    let base = t.iter().find(|x| x.implementation == "usdtkit");
    println!(
        "{:<10} {:>12} {:>12} {:>7} {:>16} {:>16}",
        "impl", "attach ms", "detach ms", "links", "attach / usdtkit", "detach / usdtkit"
    );
    for x in &t {
        let (ra, rd) = base.map_or((f64::NAN, f64::NAN), |u| {
            (x.attach_ms / u.attach_ms, x.detach_ms / u.detach_ms)
        });
        println!(
            "{:<10} {:>12.2} {:>12.2} {:>7} {:>16.2} {:>16.2}",
            x.implementation, x.attach_ms, x.detach_ms, x.links, ra, rd
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

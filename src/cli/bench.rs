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

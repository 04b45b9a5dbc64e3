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

/// One configuration of `usdtkit bench trace`.
#[derive(Debug, serde::Serialize)]
struct TraceRun {
    tool: String,
    mode: String,
    iterations: u64,
    delivered: u64,
    lost: u64,
    seconds: f64,
}

/// What a tracer wrote: hits delivered and lost, from its output.
type Tally = fn(&str) -> (u64, u64);

fn usdtkit_tally(text: &str) -> (u64, u64) {
    let mut delivered = 0;
    let mut lost = 0;
    let mut said = None;
    for l in text.lines() {
        // The closing summary on stderr: "N hits delivered in S s (...); M LOST: ..."
        if let Some(rest) = l.strip_prefix("usdtkit trace: ") {
            if let Some((d, tail)) = rest.split_once(" hits delivered") {
                let m = tail
                    .split_once("; ")
                    .and_then(|(_, t)| t.split(' ').next()?.parse().ok())
                    .unwrap_or(0);
                said = Some((d.parse().unwrap_or(0), m));
            }
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        if let Some(s) = v.get("summary") {
            lost = s["lost"].as_u64().unwrap_or(0);
            if delivered == 0 {
                // Not written here (/dev/null): what the tracer says it delivered.
                delivered = s["delivered"].as_u64().unwrap_or(0);
            }
        } else if v["final"] == true {
            delivered = v["counts"]
                .as_array()
                .map_or(0, |c| c.iter().filter_map(|c| c["count"].as_u64()).sum());
        } else if v.get("name").is_some() {
            delivered += 1;
        }
    }
    match said {
        Some((d, m)) if delivered == 0 => (d, m),
        _ => (delivered, lost),
    }
}

fn bpftrace_tally(text: &str) -> (u64, u64) {
    let mut delivered = 0;
    let mut lost = 0;
    for l in text.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
            match v["type"].as_str() {
                Some("printf") => delivered += 1,
                Some("lost_events") => lost += v["data"]["events"].as_u64().unwrap_or(0),
                _ => {}
            }
        } else if let Some(n) = l.strip_prefix("Lost ").and_then(|r| r.split(' ').next()) {
            lost += n.parse::<u64>().unwrap_or(0);
        } else if let Some((_, n)) = l.rsplit_once("]: ") {
            delivered += n.trim().parse::<u64>().unwrap_or(0);
        } else if !l.trim().is_empty() && l.split_whitespace().all(|w| w.parse::<i64>().is_ok()) {
            delivered += 1;
        }
    }
    (delivered, lost)
}

/// Run `cmd` (a tracer of the loop writing to `out`), timed, and tally its output.
fn trace_run(
    tool: &str,
    mode: &str,
    mut cmd: std::process::Command,
    out: &std::path::Path,
    n: u64,
    tally: Tally,
) -> Result<TraceRun, String> {
    let t = std::time::Instant::now();
    let o = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| e.to_string())?;
    let seconds = t.elapsed().as_secs_f64();
    if !o.status.success() {
        return Err(format!("{tool} exited with {}", o.status));
    }
    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&o.stderr));
    if out != std::path::Path::new("/dev/null") {
        text.push_str(
            &std::fs::read_to_string(out).map_err(|e| format!("{}: {e}", out.display()))?,
        );
        std::fs::remove_file(out).ok();
    }
    let (delivered, lost) = tally(&text);
    Ok(TraceRun {
        tool: tool.into(),
        mode: mode.into(),
        iterations: n,
        delivered,
        lost,
        seconds,
    })
}

/// `usdtkit bench trace`: `usdtkit trace` (this binary) and bpftrace on a loop firing one
/// probe N times: hits delivered and lost, to a file and to /dev/null, text and JSON, and
/// counted in BPF; wall time per run, startup included.
pub(super) fn trace(iterations: u64, json: bool) -> bool {
    let bin = match bench::hit_loop_fixture() {
        Ok(b) => b,
        Err(e) => {
            say_err(&e.to_string());
            return false;
        }
    };
    let me = match std::env::current_exe() {
        Ok(m) => m,
        Err(e) => {
            say_err(&e.to_string());
            return false;
        }
    };
    let file = std::env::temp_dir().join(format!("usdtkit-bench-trace-{}", std::process::id()));
    let null = std::path::PathBuf::from("/dev/null");
    let n = iterations.to_string();
    let target = format!("{}:usdtbench:nop", bin.display());
    let usdtkit = |extra: &[&str], out: &std::path::Path| {
        let mut c = std::process::Command::new(&me);
        c.args(["trace", "--json", &target]).args(extra);
        if out != null.as_path() {
            c.arg("-o").arg(out);
        }
        c.arg("--").arg(&bin).args(["nop", &n]);
        c
    };
    let bpftrace = |program: &str, extra: &[&str], out: &std::path::Path| {
        let mut c = std::process::Command::new("bpftrace");
        c.args(extra).arg("-o").arg(out);
        c.arg("-e").arg(format!(
            "usdt:{}:usdtbench:nop {{ {program} }}",
            bin.display()
        ));
        c.arg("-c").arg(format!("{} nop {n}", bin.display()));
        c
    };
    let printf = r#"printf("%d %d\n", pid, arg0);"#;
    let mut plan: Vec<(&str, &str, std::process::Command, &std::path::Path, Tally)> = vec![
        (
            "usdtkit",
            "JSON to a file",
            usdtkit(&[], &file),
            &file,
            usdtkit_tally,
        ),
        (
            "usdtkit",
            "JSON to /dev/null",
            usdtkit(&["-o", "/dev/null"], &null),
            &null,
            usdtkit_tally,
        ),
        (
            "usdtkit",
            "--count",
            usdtkit(&["--count"], &null),
            &null,
            usdtkit_tally,
        ),
    ];
    let have_bpftrace = std::process::Command::new("bpftrace")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if have_bpftrace {
        plan.push((
            "bpftrace",
            "text to a file",
            bpftrace(printf, &[], &file),
            &file,
            bpftrace_tally,
        ));
        plan.push((
            "bpftrace",
            "JSON to a file",
            bpftrace(printf, &["-f", "json"], &file),
            &file,
            bpftrace_tally,
        ));
        plan.push((
            "bpftrace",
            "@[probe] = count()",
            bpftrace("@[probe] = count();", &[], &file),
            &file,
            bpftrace_tally,
        ));
    } else {
        say_err("bpftrace is not installed: its rows are left out");
    }
    let mut rows = Vec::new();
    for (tool, mode, cmd, out, tally) in plan {
        match trace_run(tool, mode, cmd, out, iterations, tally) {
            Ok(r) => rows.push(r),
            Err(e) => {
                say_err(&format!("{tool} {mode}: {e}"));
                return false;
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string(&rows).expect("json"));
        return true;
    }
    println!("{iterations} hits of one probe (one argument) in a tight loop");
    println!(
        "{:<9} {:<20} {:>10} {:>10} {:>8} {:>12}",
        "tool", "output", "delivered", "lost", "seconds", "delivered/s"
    );
    for r in &rows {
        println!(
            "{:<9} {:<20} {:>10} {:>10} {:>8.2} {:>12.0}",
            r.tool,
            r.mode,
            r.delivered,
            r.lost,
            r.seconds,
            r.delivered as f64 / r.seconds
        );
    }
    true
}

fn say_err(msg: &str) {
    eprintln!("usdtkit bench trace: {msg}");
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

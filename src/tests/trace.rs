//! `usdtkit trace` and `list --pid` on real processes: nothing lost silently, strings,
//! signals and exit codes, output, processes seen by pid (memfd libraries included).
//! Needs root with BPF; a C compiler builds fixtures/c/trace_demo.c.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

fn privileged() -> Option<std::sync::MutexGuard<'static, ()>> {
    let ok = common::is_root() && Path::new("/sys/fs/bpf").exists();
    common::require(ok, "root with BPF").then(|| SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}

fn demo() -> &'static (PathBuf, PathBuf) {
    common::trace_demo()
}

fn usdtkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_usdtkit"))
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn summary(lines: &[Value]) -> &Value {
    let last = lines.last().expect("some output");
    last.get("summary")
        .unwrap_or_else(|| panic!("no closing summary: {last}"))
}

fn run_loop(n: u64, extra: &[&str]) -> Output {
    let bin = &demo().0;
    let target = format!("{}:demo:tick", bin.display());
    let mut c = usdtkit();
    c.args(["trace", "--json", &target]).args(extra);
    c.arg("--").arg(bin).args(["loop", &n.to_string()]);
    c.output().unwrap()
}

#[test]
fn every_hit_is_delivered_or_counted_lost() {
    let Some(_g) = privileged() else { return };
    // A ring buffer of one page holds a few dozen records: most of a tight loop's hits
    // cannot be delivered, and each of those must be counted.
    let n = 200_000;
    let out = run_loop(n, &["--buffer-size", "4096"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let s = summary(&lines);
    let hits = lines.len() as u64 - 1;
    assert_eq!(s["delivered"].as_u64(), Some(hits));
    assert_eq!(s["seen"].as_u64(), Some(n));
    let lost = s["lost"].as_u64().unwrap();
    assert!(lost > 0, "a 4 KiB buffer kept up with a tight loop? {s}");
    assert_eq!(hits + lost, n, "{s}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LOST"), "{err}");
    // The hits delivered are in order, with their values.
    let mut prev = -1;
    for h in &lines[..lines.len() - 1] {
        let i = h["args"][0].as_i64().unwrap();
        assert!(i > prev);
        assert_eq!(h["args"][1].as_i64(), Some(2 * i));
        prev = i;
    }
}

#[test]
fn default_buffer_and_count_mode() {
    let Some(_g) = privileged() else { return };
    let n = 100_000;
    let out = run_loop(n, &[]);
    assert!(out.status.success());
    let lines = json_lines(&out.stdout);
    let s = summary(&lines);
    assert_eq!(s["seen"].as_u64(), Some(n));
    assert_eq!(
        s["delivered"].as_u64().unwrap() + s["lost"].as_u64().unwrap(),
        n
    );
    // Counting in BPF loses nothing at any rate.
    let n = 2_000_000;
    let out = run_loop(n, &["--count"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let counts = lines
        .iter()
        .find(|l| l["final"] == true)
        .expect("final counts");
    let rows = counts["counts"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{counts}");
    assert_eq!(rows[0]["name"], "tick");
    assert_eq!(rows[0]["count"].as_u64(), Some(n));
    assert_eq!(summary(&lines)["lost"].as_u64(), Some(0));
}

#[test]
fn strings_are_read_per_argument_cut_marked_and_errors_named() {
    let Some(_g) = privileged() else { return };
    let bin = &demo().0;
    let run = |strs: &[&str], len: Option<&str>| {
        let mut c = usdtkit();
        c.args(["trace", "--json", &format!("{}:demo:*", bin.display())]);
        for s in strs {
            c.args(["--str", s]);
        }
        if let Some(l) = len {
            c.args(["--str-len", l]);
        }
        let out = c.arg("--").arg(bin).arg("strings").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out.stdout)
    };
    let lines = run(&["strs=0,1,2,3", "other=0"], None);
    let strs = lines
        .iter()
        .find(|l| l["name"] == "strs")
        .expect("strs hit");
    // Argument 0 (7) is no pointer: its read fails, and argument 1's string is still
    // argument 1's.
    assert_eq!(strs["strings"]["1"], "hello", "{strs}");
    let long = strs["strings"]["2"].as_str().unwrap();
    assert_eq!(long, "x".repeat(255), "default: 256 bytes with the NUL");
    assert_eq!(strs["cut"], serde_json::json!([2]));
    let errs = strs["errors"].as_array().unwrap();
    let failed: Vec<u64> = errs.iter().map(|e| e["arg"].as_u64().unwrap()).collect();
    assert_eq!(failed, vec![0, 3], "{strs}");
    assert!(errs
        .iter()
        .all(|e| e["reason"].as_str().unwrap().contains("string read failed")));
    let other = lines
        .iter()
        .find(|l| l["name"] == "other")
        .expect("other hit");
    assert_eq!(other["strings"]["0"], "other");
    // Per-probe selection: strings only where asked; a longer slot keeps the whole string.
    let lines = run(&["strs=2"], Some("1024"));
    let strs = lines.iter().find(|l| l["name"] == "strs").unwrap();
    assert_eq!(strs["strings"]["2"].as_str().unwrap().len(), 600);
    assert!(
        strs.get("cut").is_none() && strs.get("errors").is_none(),
        "{strs}"
    );
    let other = lines.iter().find(|l| l["name"] == "other").unwrap();
    assert!(other.get("strings").is_none(), "{other}");
    // A string asked of an argument the probe does not have is said.
    let out = usdtkit()
        .args([
            "trace",
            &format!("{}:demo:other", bin.display()),
            "--str",
            "0,3",
            "--",
        ])
        .arg(bin)
        .arg("strings")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has 1 arguments: no string for argument 3"),
        "{err}"
    );
}

fn spawn_tracer(args: &[&str]) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut t = usdtkit()
        .arg("trace")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(t.stderr.take().unwrap());
    // One "attached" line per target (`*` may stand for several: wait for the first).
    let targets = args
        .iter()
        .take_while(|a| **a != "--")
        .filter(|a| a.contains(':') || a.starts_with('/'))
        .count()
        .max(1);
    for _ in 0..targets {
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        assert!(line.contains("attached"), "{line}");
    }
    (t, err)
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[test]
fn a_signal_to_the_tracer_reaches_the_command_and_its_status_comes_back() {
    let Some(_g) = privileged() else { return };
    let bin = demo().0.display().to_string();
    let target = format!("{bin}:demo:tick");
    let (mut t, mut err) = spawn_tracer(&[&target, "--", &bin, "sleep", "30"]);
    std::thread::sleep(Duration::from_millis(200));
    usdtkit::sys::process::signal_process(t.id(), libc::SIGTERM).unwrap();
    let st = wait_for(&mut t, Duration::from_secs(10)).expect("trace ends after SIGTERM");
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    // The command died of the SIGTERM passed on: 128 + 15, as a shell says it.
    assert_eq!(st.code(), Some(143), "{rest}");
    assert!(!rest.contains("Interrupted system call"), "{rest}");
    assert!(rest.contains("interrupted by signal 15"), "{rest}");
    // A command that crashes: its signal, not a blanket 137.
    let out = usdtkit()
        .args(["trace", &target, "--", "/bin/sh", "-c", "kill -SEGV $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(128 + 11));
}

#[test]
fn a_closed_output_ends_tracing_without_a_panic() {
    let Some(_g) = privileged() else { return };
    let bin = demo().0.display().to_string();
    let mut t = usdtkit()
        .args([
            "trace",
            &format!("{bin}:demo:tick"),
            "--",
            &bin,
            "loop",
            "3000000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(t.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("demo:tick"), "{line}");
    drop(out);
    let st = wait_for(&mut t, Duration::from_secs(20)).expect("trace ends");
    let mut err = String::new();
    t.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("the output closed"), "{err}");
    assert_ne!(st.code(), Some(101));
}

#[test]
fn a_failed_attach_never_runs_the_command() {
    let Some(_g) = privileged() else { return };
    let marker = std::env::temp_dir().join(format!("usdtkit-ran-{}", std::process::id()));
    let out = usdtkit()
        .args(["trace", "/nonexistent/prog", "--", "/bin/touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!marker.exists(), "the command ran untraced");
    let out = usdtkit().args(["trace", "/bin/true"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no USDT probes"), "{err}");
}

/// trace_demo `wait` (or `memfd LIB`) started and ready: the child and its stdin.
fn waiting(args: &[&str]) -> (Child, std::process::ChildStdin) {
    let mut c = Command::new(&demo().0);
    c.args(args);
    ready(c)
}

/// `cmd` (running trace_demo `wait` or `memfd`) started, once it said "ready".
fn ready(mut cmd: Command) -> (Child, std::process::ChildStdin) {
    let mut c = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready"), "{line}");
    let stdin = c.stdin.take().unwrap();
    (c, stdin)
}

#[test]
fn pid_tracing_ends_with_the_process_and_warns_about_unmapped_files() {
    let Some(_g) = privileged() else { return };
    let (mut p, mut stdin) = waiting(&["wait"]);
    let pid = p.id().to_string();
    let bin = demo().0.display().to_string();
    let (mut t, mut err) = spawn_tracer(&["--json", &format!("{bin}:demo:tick"), "--pid", &pid]);
    for _ in 0..3 {
        stdin.write_all(b"go\n").unwrap();
    }
    drop(stdin);
    p.wait().unwrap();
    let st = wait_for(&mut t, Duration::from_secs(10)).expect("trace ends with its process");
    assert!(st.success());
    let mut out = Vec::new();
    t.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let lines = json_lines(&out);
    assert_eq!(summary(&lines)["delivered"].as_u64(), Some(3));
    let ended = summary(&lines)["ended"].as_str().unwrap().to_string();
    assert_eq!(ended, format!("process {pid} exited"));
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(!rest.contains("does not map"), "{rest}");
    // A process that does not map the file: an error naming what it does map.
    let (mut p, stdin) = waiting(&["wait"]);
    let lib = demo().1.display().to_string();
    let out = usdtkit()
        .args(["trace", &lib, "--pid", &p.id().to_string()])
        .output()
        .unwrap();
    drop(stdin);
    p.wait().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("does not map") && err.contains(&bin), "{err}");
}

#[test]
fn memfd_libraries_are_listed_and_traced_by_pid() {
    let Some(_g) = privileged() else { return };
    let lib = demo().1.display().to_string();
    let (mut p, mut stdin) = waiting(&["memfd", &lib]);
    let pid = p.id().to_string();
    let list = usdtkit().args(["list", "--pid", &pid]).output().unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(
        text.contains("/memfd:demolib") && text.contains("demolib:fire"),
        "{text}"
    );
    assert!(
        text.contains("demo:tick"),
        "the executable is listed too: {text}"
    );
    // list --pid against /proc/PID/maps read here: every mapped file readelf finds notes in.
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut want = std::collections::BTreeSet::new();
    for l in maps.lines() {
        let f: Vec<&str> = l.splitn(6, ' ').collect();
        let path = f.get(5).map_or("", |p| p.trim());
        if !path.starts_with('/') {
            continue;
        }
        let range = f[0];
        let notes = Command::new("readelf")
            .args(["-n", "--wide"])
            .arg(format!("/proc/{pid}/map_files/{range}"))
            .output()
            .unwrap();
        if String::from_utf8_lossy(&notes.stdout).contains("NT_STAPSDT") {
            want.insert(path.trim_end_matches(" (deleted)").to_string());
        }
    }
    let list = usdtkit()
        .args(["list", "--json", "--pid", &pid])
        .output()
        .unwrap();
    let got: std::collections::BTreeSet<String> = json_lines(&list.stdout)
        .iter()
        .map(|v| {
            let f = v["file"].as_str().unwrap();
            f.split(" (via ").next().unwrap().to_string()
        })
        .collect();
    assert_eq!(got, want);
    let (mut t, mut err) = spawn_tracer(&["--json", "memfd:demolib", "*:demo:tick", "--pid", &pid]);
    stdin.write_all(b"a\nb\n").unwrap();
    drop(stdin);
    p.wait().unwrap();
    wait_for(&mut t, Duration::from_secs(10)).expect("trace ends");
    let mut out = Vec::new();
    t.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let lines = json_lines(&out);
    let hits: Vec<i64> = lines
        .iter()
        .filter(|l| l["name"] == "fire")
        .map(|l| l["args"][0].as_i64().unwrap())
        .collect();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(hits, vec![0, 1], "{}{rest}", String::from_utf8_lossy(&out));
}

#[test]
fn paths_inside_another_mount_namespace() {
    let Some(_g) = privileged() else { return };
    if !common::require(
        Command::new("unshare").arg("--version").output().is_ok(),
        "unshare (util-linux)",
    ) {
        return;
    }
    let (bin, _) = demo();
    let dir = bin.parent().unwrap().display().to_string();
    // The process runs trace_demo as /mnt/usdtkit-ns/trace_demo, a path only its own mount
    // namespace has.
    let script = format!(
        "mkdir -p /mnt/usdtkit-ns && mount --bind {dir} /mnt/usdtkit-ns && exec /mnt/usdtkit-ns/trace_demo wait"
    );
    let mut unshare = Command::new("unshare");
    unshare.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let (mut p, mut stdin) = ready(unshare);
    let pid = p.id().to_string();
    assert!(
        !Path::new("/mnt/usdtkit-ns/trace_demo").exists(),
        "leaked into our namespace"
    );
    let (mut t, _err) = spawn_tracer(&[
        "--json",
        "/mnt/usdtkit-ns/trace_demo:demo:tick",
        "--pid",
        &pid,
    ]);
    stdin.write_all(b"x\n").unwrap();
    drop(stdin);
    p.wait().unwrap();
    wait_for(&mut t, Duration::from_secs(10)).expect("trace ends");
    let mut out = Vec::new();
    t.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(summary(&json_lines(&out))["delivered"].as_u64(), Some(1));
}

#[test]
fn several_targets_and_an_output_file() {
    let Some(_g) = privileged() else { return };
    let (bin, lib) = demo();
    let file = std::env::temp_dir().join(format!("usdtkit-trace-out-{}", std::process::id()));
    let out = usdtkit()
        .arg("trace")
        .arg(format!("{}:demo:other", bin.display()))
        .arg(format!("{}:demo:strs", bin.display()))
        .arg(lib) // mapped by nobody: attached all the same
        .args(["--json", "-o"])
        .arg(&file)
        .arg("--")
        .arg(bin)
        .arg("strings")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "hits went to stdout");
    let lines = json_lines(&std::fs::read(&file).unwrap());
    let names: Vec<&str> = lines.iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(names, vec!["strs", "other"]);
    std::fs::remove_file(&file).ok();
}

#[test]
fn decode_defaults_to_this_machine() {
    let out = usdtkit().args(["decode", "-4@%eax"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Not a test of its own: the second process of `two_processes_attaching_through_one_program_
/// keep_their_specs`, run by it with `USDTKIT_HELPER_PROG` set. Attaches demo:strs and
/// demo:other through that program, prints its spec ids, and holds them until stdin ends.
#[test]
fn second_attacher_helper() {
    use std::os::fd::AsFd;
    let (Ok(prog), Ok(bin)) = (
        std::env::var("USDTKIT_HELPER_PROG"),
        std::env::var("USDTKIT_HELPER_BIN"),
    ) else {
        return;
    };
    let fd = usdtkit::attach::program_by_id(prog.parse().unwrap()).unwrap();
    let file = usdtkit::MappedFile::open(&bin).unwrap();
    let usdt = file.usdt().unwrap();
    let sels = [
        usdtkit::attach::ProbeSelector::new("demo", "strs", 0),
        usdtkit::attach::ProbeSelector::new("demo", "other", 0),
    ];
    let link = usdtkit::attach::UsdtAttacher::new(fd.as_fd())
        .site_cookies(1_000_000)
        .attach_file(Path::new(&bin), &file, &usdt, &sels)
        .unwrap();
    let ids: Vec<String> = link.sites().iter().map(|s| s.spec_id.to_string()).collect();
    println!("IDS {}", ids.join(" "));
    std::io::stdout().flush().unwrap();
    let mut rest = String::new();
    std::io::stdin().read_to_string(&mut rest).unwrap();
}

#[test]
fn two_processes_attaching_through_one_program_keep_their_specs() {
    let Some(_g) = privileged() else { return };
    use usdtkit::recorder::{ArgValue, Recorder, RecorderOptions};
    let bin = demo().0.clone();
    let path = bin.to_str().unwrap();
    let mut storage = std::mem::MaybeUninit::uninit();
    let mut rec = Recorder::load(&mut storage, RecorderOptions::default()).unwrap();
    let mine: Vec<u32> = rec
        .attach(path, &[("demo", "tick")], -1, &[])
        .unwrap()
        .sites()
        .iter()
        .map(|s| s.spec_id)
        .collect();
    let prog = usdtkit::attach::program_id(rec.multi_program_fd()).unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_attacher_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("USDTKIT_HELPER_PROG", prog.to_string())
        .env("USDTKIT_HELPER_BIN", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(helper.stdout.take().unwrap());
    let theirs: Vec<u32> = loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the helper ended without its ids"
        );
        // libtest prints it after "test second_attacher_helper ... ".
        if let Some((_, ids)) = line.split_once("IDS ") {
            break ids.split_whitespace().map(|i| i.parse().unwrap()).collect();
        }
    };
    assert!(!theirs.is_empty());
    assert!(
        mine.iter().all(|i| !theirs.contains(i)),
        "shared ids: ours {mine:?}, theirs {theirs:?}"
    );
    // Attached after the other process: still apart from its ids.
    let more: Vec<u32> = rec
        .attach(path, &[("demo", "other")], -1, &[])
        .unwrap()
        .sites()
        .iter()
        .map(|s| s.spec_id)
        .collect();
    assert!(
        more.iter().all(|i| !theirs.contains(i)),
        "{more:?} {theirs:?}"
    );
    let fire = |rec: &mut Recorder<'_>| {
        for mode in [&["loop", "3"][..], &["strings"]] {
            assert!(Command::new(&bin).args(mode).status().unwrap().success());
        }
        let hits = rec.poll(Duration::from_millis(200)).unwrap();
        let ticks: Vec<&Vec<ArgValue>> = hits
            .iter()
            .filter(|h| &*h.name == "tick")
            .map(|h| &h.args)
            .collect();
        assert_eq!(ticks.len(), 3, "{hits:?}");
        for (i, args) in ticks.iter().enumerate() {
            assert_eq!(
                **args,
                vec![ArgValue::Int(i as i128), ArgValue::Int(2 * i as i128)]
            );
        }
        let other: Vec<&Vec<ArgValue>> = hits
            .iter()
            .filter(|h| &*h.name == "other")
            .map(|h| &h.args)
            .collect();
        assert_eq!(other.len(), 1);
        assert!(
            matches!(other[0][..], [ArgValue::Int(p)] if p > 0),
            "{other:?}"
        );
    };
    fire(&mut rec);
    // Its hits reach our ring buffer too (one program): counted as not ours, not shown.
    assert!(rec.stats().unwrap().foreign > 0);
    // The other process detaches (ends): ours read right still.
    drop(helper.stdin.take());
    assert!(helper.wait().unwrap().success());
    fire(&mut rec);
}

#[test]
fn a_fifo_is_refused_at_once() {
    let dir = std::env::temp_dir().join(format!("usdtkit-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    std::fs::remove_file(&fifo).ok();
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    let out = usdtkit().arg("list").arg(&fifo).output().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "list blocked on a FIFO"
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FIFO"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_target_replaced_on_disk_is_reported() {
    let Some(_g) = privileged() else { return };
    let dir = std::env::temp_dir().join(format!("usdtkit-replace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("prog");
    std::fs::copy(&demo().0, &target).unwrap();
    let t = format!("{}:demo:tick", target.display());
    let (mut tracer, mut err) = spawn_tracer(&[&t]);
    // A new build put in place as installers do: written aside, then renamed over.
    let aside = dir.join("prog.new");
    std::fs::copy(&demo().0, &aside).unwrap();
    std::fs::rename(&aside, &target).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    usdtkit::sys::process::signal_process(tracer.id(), libc::SIGINT).unwrap();
    wait_for(&mut tracer, Duration::from_secs(10)).expect("trace ends on SIGINT");
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("was replaced on disk"), "{rest}");
    std::fs::remove_dir_all(&dir).ok();
}

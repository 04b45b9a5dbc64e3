//! Attaching for real (root, BPF, uprobes): self-conformance on the quick corpus in both
//! attach modes, semaphores through the kernel's ref_ctr, a full spec map, `nop; nop5`
//! sites, errors, and `usdtkit trace`.

mod common;

use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use usdtkit::attach::AttachMode;
use usdtkit::check::{self, run::Waiting, Outcome};
use usdtkit::gen::{self, GenOptions, Manifest, Profile};
use usdtkit::recorder::{Recorder, RecorderOptions};
use usdtkit::synth::{ElfSpec, NoteSpec};

/// Tests here attach to the same files and count semaphores: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Root with BPF and uprobes (Linux 6.6+ for uprobe_multi). Also takes the test lock.
fn privileged() -> Option<std::sync::MutexGuard<'static, ()>> {
    let root = common::is_root();
    let pmu = Path::new("/sys/bus/event_source/devices/uprobe/type").exists();
    common::require(root && pmu, "root with BPF and the uprobe PMU")
        .then(|| SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The quick corpus, built once per test binary.
fn corpus() -> &'static (PathBuf, Manifest) {
    static C: OnceLock<(PathBuf, Manifest)> = OnceLock::new();
    C.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("usdtkit-attach-{}", std::process::id()));
        let opts = GenOptions {
            seed: 42,
            profile: Profile::Quick,
            out: out.clone(),
            progress: false,
        };
        let m = gen::generate(&opts).expect("quick corpus builds");
        (out, m)
    })
}

fn fixture(name: &str) -> &'static gen::Fixture {
    corpus()
        .1
        .fixtures
        .iter()
        .find(|f| f.name.starts_with(name))
        .expect("fixture")
}

fn self_check(mode: AttachMode, before_exec: bool) {
    let (dir, m) = corpus();
    let mut totals = std::collections::BTreeMap::new();
    for fx in m.fixtures.iter().filter(|f| f.runnable) {
        let opts = RecorderOptions {
            mode,
            ..RecorderOptions::default()
        };
        let shapes = check::select::shapes(dir, fx).unwrap();
        let sel = check::select::Selection::all(&shapes);
        let run =
            check::impls::usdtkit::run(dir, fx, &sel, opts, before_exec, Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("{}: {e}", fx.name));
        for r in check::compare(fx, &run, Some(&sel)) {
            // Every argument usdtkit accepts reads the expected value; a refusal must be one
            // of the forms no uprobe can read, with its reason.
            match r.outcome {
                Outcome::Pass => {}
                Outcome::Refused => assert!(
                    [
                        "at most 8 bytes",
                        "not in the note",
                        "pt_regs",
                        "not defined",
                        "SIB without a base"
                    ]
                    .iter()
                    .any(|k| r.detail.contains(k)),
                    "{} {mode:?}: unexpected refusal {r:?}",
                    fx.name
                ),
                _ => panic!("{} {mode:?}: {r:?}", fx.name),
            }
            *totals.entry(r.outcome).or_insert(0) += 1;
        }
    }
    assert!(totals[&Outcome::Pass] > 600, "{totals:?}");
}

/// Run the usdtkit binary with `args`; it must succeed (its stderr is the failure message).
fn usdtkit_ok<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_usdtkit"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn quick_corpus_reads_right_through_uprobe_multi() {
    if let Some(_g) = privileged() {
        self_check(AttachMode::Multi, false);
    }
}

#[test]
fn quick_corpus_reads_right_through_perf_events() {
    if let Some(_g) = privileged() {
        self_check(AttachMode::PerfEvent, false);
    }
}

/// Attached before each fixture's exec, as `trace -- COMMAND` does: every semaphore-guarded
/// hit arrives, the lld fixtures' (semaphores on RELRO's page) included.
#[test]
fn quick_corpus_reads_right_when_attached_before_exec() {
    if let Some(_g) = privileged() {
        self_check(AttachMode::Multi, true);
    }
}

/// The u16 at a file offset of `object`, read from the running process's memory.
fn read_semaphore(pid: u32, object: &Path, file_offset: u64) -> u16 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let want = std::fs::canonicalize(object).unwrap();
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || Path::new(f[5]) != want {
            continue;
        }
        let (start, end) = f[0].split_once('-').unwrap();
        let (start, end) = (
            u64::from_str_radix(start, 16).unwrap(),
            u64::from_str_radix(end, 16).unwrap(),
        );
        let off = u64::from_str_radix(f[2], 16).unwrap();
        if file_offset >= off && file_offset < off + (end - start) {
            let addr = start + (file_offset - off);
            use std::io::{Read, Seek, SeekFrom};
            let mut m = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
            m.seek(SeekFrom::Start(addr)).unwrap();
            let mut b = [0u8; 2];
            m.read_exact(&mut b).unwrap();
            return u16::from_ne_bytes(b);
        }
    }
    panic!(
        "{} offset {file_offset:#x} not mapped in {pid}",
        object.display()
    );
}

fn semaphores(mode: AttachMode) {
    let (dir, _) = corpus();
    let fx = fixture("c-gcc-O0");
    let exe = dir.join(&fx.binary);
    let lib = dir.join(&fx.libraries[0]);
    let sem_of = |obj: &Path, provider: &str, name: &str| {
        let mapped = usdtkit::MappedFile::open(obj).unwrap();
        let u = mapped.usdt().unwrap();
        let p = u.probe(provider, name).unwrap();
        p.sites[0].semaphore_file_offset.unwrap()
    };
    let exe_sem = sem_of(&exe, "usdtfix", "guarded");
    let lib_sem = sem_of(&lib, "usdtfixlib", "lib_guarded");
    // The kernel counts one reference per registered site: `guarded` has two sites sharing
    // its semaphore, `lib_guarded` one.
    let mapped = usdtkit::MappedFile::open(&exe).unwrap();
    let u = mapped.usdt().unwrap();
    let n = u.probe("usdtfix", "guarded").unwrap().sites.len() as u16;
    assert_eq!(n, 2);
    let opts = RecorderOptions {
        mode,
        ..RecorderOptions::default()
    };
    let running = Waiting::start(dir, fx).unwrap();
    let pid = running.pid();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(read_semaphore(pid, &exe, exe_sem), 0);
    assert_eq!(read_semaphore(pid, &lib, lib_sem), 0);
    let (mut s1, mut s2) = (MaybeUninit::uninit(), MaybeUninit::uninit());
    let mut r1 = Recorder::load(&mut s1, opts).unwrap();
    let mut r2 = Recorder::load(&mut s2, opts).unwrap();
    r1.attach(exe.to_str().unwrap(), &[("usdtfix", "guarded")], -1, &[])
        .unwrap();
    r1.attach(lib.to_str().unwrap(), &[("usdtfixlib", "*")], -1, &[])
        .unwrap();
    assert_eq!(
        read_semaphore(pid, &exe, exe_sem),
        n,
        "{mode:?}: one link raises it"
    );
    assert_eq!(
        read_semaphore(pid, &lib, lib_sem),
        1,
        "{mode:?}: in the library too"
    );
    // A second link on the same sites: the kernel keeps one uprobe per (file, offset) and
    // counts one reference per registered uprobe, so the count does not move, and it stays
    // up until the last link detaches.
    r2.attach(exe.to_str().unwrap(), &[("usdtfix", "guarded")], -1, &[])
        .unwrap();
    assert_eq!(
        read_semaphore(pid, &exe, exe_sem),
        n,
        "{mode:?}: two links, same sites"
    );
    // A process started after the attach gets its semaphore raised when it maps the file.
    let later = Waiting::start(dir, fx).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        read_semaphore(later.pid(), &exe, exe_sem),
        n,
        "{mode:?}: later process"
    );
    assert_eq!(
        read_semaphore(later.pid(), &lib, lib_sem),
        1,
        "{mode:?}: later process, library"
    );
    r2.detach_all();
    assert_eq!(
        read_semaphore(pid, &exe, exe_sem),
        n,
        "{mode:?}: one link left"
    );
    r1.detach_all();
    assert_eq!(read_semaphore(pid, &exe, exe_sem), 0, "{mode:?}: back to 0");
    assert_eq!(read_semaphore(pid, &lib, lib_sem), 0);
    assert_eq!(read_semaphore(later.pid(), &exe, exe_sem), 0);
}

#[test]
fn semaphores_follow_links_uprobe_multi() {
    if let Some(_g) = privileged() {
        semaphores(AttachMode::Multi);
    }
}

#[test]
fn semaphores_follow_links_perf_events() {
    if let Some(_g) = privileged() {
        semaphores(AttachMode::PerfEvent);
    }
}

#[test]
fn a_full_spec_map_fails_cleanly() {
    let Some(_g) = privileged() else { return };
    let (dir, _) = corpus();
    let fx = fixture("c-gcc-O0");
    let exe = dir.join(&fx.binary);
    let mapped = usdtkit::MappedFile::open(&exe).unwrap();
    let u = mapped.usdt().unwrap();
    let sem = u.probe("usdtfix", "guarded").unwrap().sites[0]
        .semaphore_file_offset
        .unwrap();
    let running = Waiting::start(dir, fx).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut s = MaybeUninit::uninit();
    let opts = RecorderOptions {
        max_specs: Some(4),
        ..RecorderOptions::default()
    };
    let mut r = Recorder::load(&mut s, opts).unwrap();
    let e = r
        .attach(exe.to_str().unwrap(), &[("*", "*")], -1, &[])
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("__bpf_usdt_specs is full (4 entries"),
        "{e}"
    );
    assert!(e.to_string().contains(exe.to_str().unwrap()), "{e}");
    assert!(r.links().is_empty());
    assert_eq!(
        read_semaphore(running.pid(), &exe, sem),
        0,
        "nothing left raised"
    );
    // The ids came back: a small attach now fits.
    r.attach(exe.to_str().unwrap(), &[("usdtfix", "guarded")], -1, &[])
        .unwrap();
    assert_eq!(
        read_semaphore(running.pid(), &exe, sem),
        2,
        "two sites, one reference each"
    );
}

#[test]
fn nop5_sites_attach_at_plus_one_and_read_right() {
    let Some(_g) = privileged() else { return };
    let (dir, _) = corpus();
    let fx = fixture("asm-gcc");
    let exe = dir.join(&fx.binary);
    let mut s = MaybeUninit::uninit();
    let mut r = Recorder::load(&mut s, RecorderOptions::default()).unwrap();
    let link = r
        .attach(exe.to_str().unwrap(), &[("usdtfix", "nop5_site")], -1, &[])
        .unwrap();
    let site = &link.sites()[0];
    let mapped = usdtkit::MappedFile::open(&exe).unwrap();
    let u = mapped.usdt().unwrap();
    let note = &u.probe("usdtfix", "nop5_site").unwrap().sites[0];
    assert_eq!(note.trailing_bytes, 1, "usdt.h's nop5 marker");
    let optimized = usdtkit_has_uprobe_syscall();
    assert_eq!(site.offset, note.file_offset + u64::from(optimized));
    drop(r);
    // Values are checked by the self-check tests (the asm fixture has this probe).
}

fn usdtkit_has_uprobe_syscall() -> bool {
    // The kernel version tells: the uprobe() syscall arrived in 6.18.
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel
        .trim()
        .split(['.', '-'])
        .map(|x| x.parse::<u32>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (6, 18)
}

#[test]
fn attach_errors_name_file_and_probe() {
    let Some(_g) = privileged() else { return };
    let (dir, _) = corpus();
    let exe = dir.join(&fixture("c-gcc-O0").binary);
    let mut s = MaybeUninit::uninit();
    let mut r = Recorder::load(&mut s, RecorderOptions::default()).unwrap();
    let e = r
        .attach(exe.to_str().unwrap(), &[("usdtfix", "nope")], -1, &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(exe.to_str().unwrap())
            && e.contains("usdtfix:nope")
            && e.contains("no such probe"),
        "{e}"
    );
    let e = r
        .attach("/nonexistent/bin", &[("*", "*")], -1, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/bin"), "{e}");
    let e = r
        .attach("libusdtkit-none.so", &[("*", "*")], 999_999_999, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("999999999"), "dead pid named: {e}");
    // A binary of another architecture: its processes never run under this kernel.
    let foreign = dir.join("foreign-aarch64");
    let spec = ElfSpec {
        machine: object::elf::EM_AARCH64.0,
        notes: vec![NoteSpec::new(0x40_1000, "p", "n", "-4@x0")],
        ..ElfSpec::default()
    };
    std::fs::write(&foreign, spec.build()).unwrap();
    let e = r
        .attach(foreign.to_str().unwrap(), &[("*", "*")], -1, &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("foreign-aarch64") && e.contains("the file is for aarch64"),
        "{e}"
    );
}

#[test]
fn trace_runs_a_command_and_prints_json() {
    let Some(_g) = privileged() else { return };
    let (dir, _) = corpus();
    let fx = fixture("c-gcc-O2");
    let exe = dir.join(&fx.binary);
    let target = format!("{}:usdtfix:args*", exe.display());
    let out = usdtkit_ok([
        "trace".as_ref(),
        "--json".as_ref(),
        target.as_ref(),
        "--".as_ref(),
        exe.as_os_str(),
    ]);
    let hits: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("summary").is_none())
        .collect();
    let want: Vec<&gen::Hit> = fx
        .hits
        .iter()
        .filter(|h| h.name.starts_with("args"))
        .collect();
    assert_eq!(hits.len(), want.len());
    for (h, w) in hits.iter().zip(want) {
        assert_eq!(h["name"], w.name.as_str());
        assert!(h["pid"].as_u64().unwrap() > 0 && h["ip"].as_u64().unwrap() > 0);
        let args = h["args"].as_array().unwrap();
        assert_eq!(args.len(), w.args.len());
        for (a, e) in args.iter().zip(&w.args) {
            if let gen::Expected::Int { value, .. } = e {
                let got = a
                    .as_i64()
                    .map(i128::from)
                    .or(a.as_u64().map(i128::from))
                    .unwrap();
                assert_eq!(got, value.as_i128(), "{}", w.name);
            }
        }
    }
    // The command's exit status comes back.
    let st = Command::new(env!("CARGO_BIN_EXE_usdtkit"))
        .args(["trace", &target, "--", "/bin/sh", "-c", "exit 7"])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(7));
}

#[test]
fn trace_python_function_entry_strings() {
    let Some(_g) = privileged() else { return };
    if !common::require_file("/usr/bin/python3.11", "Debian python3.11") {
        return;
    }
    let out = usdtkit_ok([
        "trace",
        "--json",
        "/usr/bin/python3.11:python:function__entry",
        "--str",
        "0,1",
        "--",
        "/usr/bin/python3.11",
        "-c",
        "sorted([3, 1, 2], key=lambda v: v)",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let hits: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("summary").is_none())
        .collect();
    // Python 3.11 reaches function__entry only for frames it starts outside its inlined
    // Python-to-Python calls: a handful at start-up here. Every hit carries the file and
    // function names, read through the sleepable recorder.
    assert!(!hits.is_empty(), "no hits");
    for h in &hits {
        let file = h["strings"]["0"].as_str().unwrap_or_default();
        let func = h["strings"]["1"].as_str().unwrap_or_default();
        assert!(!file.is_empty() && !func.is_empty(), "{h}");
    }
    assert!(
        hits.iter()
            .any(|h| h["strings"]["0"] == "<frozen _collections_abc>"
                && h["strings"]["1"] == "_coro"),
        "{text}"
    );
    // gdb, an independent tracer, sees the same number of hits.
    if Command::new("gdb").arg("--version").output().is_ok() {
        let script = std::env::temp_dir().join(format!("usdtkit-py-{}.py", std::process::id()));
        std::fs::write(
            &script,
            "import gdb\nn = [0]\nclass B(gdb.Breakpoint):\n    def stop(self):\n        n[0] += 1\n        return False\nB('-probe-stap python:function__entry')\ngdb.execute('run')\nprint('COUNT', n[0])\n",
        )
        .unwrap();
        let g = Command::new("gdb")
            .args(["-batch", "-nx", "-x"])
            .arg(&script)
            .args([
                "--args",
                "/usr/bin/python3.11",
                "-c",
                "sorted([3, 1, 2], key=lambda v: v)",
            ])
            .output()
            .unwrap();
        let count = String::from_utf8_lossy(&g.stdout).lines().find_map(|l| {
            l.strip_prefix("COUNT ")
                .map(|n| n.trim().parse::<usize>().unwrap())
        });
        assert_eq!(count, Some(hits.len()), "gdb and usdtkit disagree");
        std::fs::remove_file(script).ok();
    }
    assert!(hits.iter().all(|h| h["name"] == "function__entry"));
}

#[test]
fn trace_a_running_postgres_server() {
    let Some(_g) = privileged() else { return };
    let bin = "/usr/lib/postgresql/15/bin";
    if !common::require_file(&format!("{bin}/postgres"), "Debian postgresql-15") {
        return;
    }
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("usdtkit-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display().to_string();
    let as_postgres = |cmd: String| {
        Command::new("su")
            .args(["postgres", "-c", &cmd])
            .output()
            .unwrap()
    };
    assert!(Command::new("chown")
        .args(["postgres", &d])
        .status()
        .unwrap()
        .success());
    let init = as_postgres(format!("{bin}/initdb -D {d}/data"));
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let start = as_postgres(format!(
        "{bin}/pg_ctl -D {d}/data -w -o '-k {d} -c listen_addresses=' -l {d}/log start"
    ));
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let mut tracer = Command::new(env!("CARGO_BIN_EXE_usdtkit"))
        .args([
            "trace",
            "--json",
            &format!("{bin}/postgres:postgresql:query__start"),
            "--str",
            "0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(tracer.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("attached"), "{line}");
    let q = as_postgres(format!("psql -h {d} -c 'select 42 as usdtkit_probe'"));
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &tracer.id().to_string()])
        .status();
    let out = tracer.wait_with_output().unwrap();
    as_postgres(format!("{bin}/pg_ctl -D {d}/data -m fast stop"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains(r#""0":"select 42 as usdtkit_probe""#)),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bench_attach_runs_rounds_and_reports_paired_ratios() {
    let Some(_g) = privileged() else { return };
    let out = usdtkit_ok([
        "bench",
        "attach",
        "--sites",
        "40",
        "--probes",
        "2",
        "--rounds",
        "3",
        "--impl",
        "usdtkit,kernel",
        "--json",
    ]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let names: Vec<_> = rows.iter().map(|r| r["implementation"].clone()).collect();
    assert_eq!(names, ["usdtkit", "kernel"]);
    for r in rows {
        assert_eq!(r["rounds"], 3);
        assert_eq!(r["links"], 1, "{r}");
        assert_eq!(r["sites"], 40, "{r}");
        assert!(r["detach_ms"].as_f64().unwrap() > 0.0, "{r}");
        // Each ratio is this implementation's time over usdtkit's in the same round.
        let spread = &r["attach_vs_usdtkit"];
        let (q1, med, q3) = (
            spread["q1"].as_f64().unwrap(),
            spread["median"].as_f64().unwrap(),
            spread["q3"].as_f64().unwrap(),
        );
        assert!(q1 <= med && med <= q3 && q1 > 0.0, "{r}");
    }
    assert_eq!(rows[0]["detach_vs_usdtkit"]["median"], 1.0);
}

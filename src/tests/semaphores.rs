//! Semaphores on a file page the RELRO segment maps too (lld's layout): the layout is found
//! as `readelf` shows it, and `usdtkit trace` fires the guarded probes both when it starts
//! the command (`-- CMD`, where the kernel alone would raise them in the wrong mapping) and
//! when it attaches to a process already running (`--pid`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use usdtkit::gen::{self, Manifest};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn corpus() -> &'static (PathBuf, Manifest) {
    static C: OnceLock<(PathBuf, Manifest)> = OnceLock::new();
    C.get_or_init(|| common::quick_corpus("sem", 5))
}

fn fixture(name: &str) -> &'static gen::Fixture {
    corpus()
        .1
        .fixtures
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("the quick corpus has {name}"))
}

/// (offset, vaddr, filesz, writable) of each PT_LOAD, as readelf prints them.
fn loads(path: &std::path::Path) -> Vec<(u64, u64, u64, bool)> {
    let out = Command::new("readelf")
        .arg("-lW")
        .arg(path)
        .output()
        .unwrap();
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                hex(f[1]),
                hex(f[2]),
                hex(f[4]),
                f[6..].concat().contains('W'),
            )
        })
        .collect()
}

/// Whether, per readelf, a writable PT_LOAD below the one holding `sem` (a link-time
/// address) maps `sem`'s 4 KiB file page.
fn readelf_says_aliased(path: &std::path::Path, sem: u64) -> bool {
    let l = loads(path);
    let Some(own) = l.iter().find(|s| sem >= s.1 && sem < s.1 + s.2).copied() else {
        return false;
    };
    let off = sem - own.1 + own.0;
    l.iter().any(|s| {
        s.3 && s.1 < own.1 && off >= s.0 & !0xfff && off < (s.0 + s.2).div_ceil(4096) * 4096
    })
}

#[test]
fn the_relro_page_layout_is_found_as_readelf_shows_it() {
    let (dir, _) = corpus();
    let mut seen = 0;
    for name in ["c-clang-O2-pie-lld", "c-gcc-O0-pie", "rust-probe-lld"] {
        let fx = fixture(name);
        for obj in std::iter::once(&fx.binary).chain(&fx.libraries) {
            let path = dir.join(obj);
            let m = usdtkit::MappedFile::open(&path).unwrap();
            let u = m.usdt().unwrap();
            let ours: Vec<u64> = u.semaphore_aliases().iter().map(|a| a.semaphore).collect();
            let mut sems: Vec<u64> = u.sites().iter().filter_map(|s| s.semaphore).collect();
            sems.sort_unstable();
            sems.dedup();
            for s in sems {
                let theirs = readelf_says_aliased(&path, s);
                assert_eq!(
                    ours.contains(&s),
                    theirs,
                    "{} semaphore {s:#x}",
                    path.display()
                );
                seen += usize::from(theirs);
            }
            // The generator laid the lld builds out that way; GNU ld never does.
            assert_eq!(
                !ours.is_empty(),
                name.ends_with("-lld"),
                "{}: {ours:x?}",
                path.display()
            );
        }
    }
    assert!(seen >= 3, "{seen}");
}

fn guarded_hits(json: &str) -> usize {
    json.lines()
        .filter(|l| l.contains("\"name\":\"guarded\"") || l.contains("\"name\":\"lazy"))
        .count()
}

fn expected_guarded(fx: &gen::Fixture) -> usize {
    fx.hits
        .iter()
        .filter(|h| h.object == fx.binary && h.semaphore)
        .count()
}

#[test]
fn trace_of_a_command_fires_probes_guarded_by_semaphores_on_relros_page() {
    if !common::require(common::is_root(), "root with BPF and uprobes") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (dir, _) = corpus();
    for name in ["c-clang-O2-pie-lld", "rust-probe-lld", "c-gcc-O0-pie"] {
        let fx = fixture(name);
        let exe = dir.join(&fx.binary);
        let out = Command::new(env!("CARGO_BIN_EXE_usdtkit"))
            .args(["trace", "--json"])
            .arg(&exe)
            .arg("--")
            .arg(&exe)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let want = expected_guarded(fx);
        assert!(want > 0, "{name} has guarded hits");
        assert_eq!(guarded_hits(&stdout), want, "{name}: {stderr}\n{stdout}");
        assert_eq!(
            stderr.contains("moved to"),
            name.ends_with("-lld"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn trace_of_a_running_process_fires_probes_guarded_by_semaphores_on_relros_page() {
    if !common::require(common::is_root(), "root with BPF and uprobes") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (dir, _) = corpus();
    for name in ["c-clang-O2-pie-lld", "rust-probe-lld"] {
        let fx = fixture(name);
        let exe = dir.join(&fx.binary);
        let mut prog = Command::new(&exe)
            .arg("--wait")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut tracer = Command::new(env!("CARGO_BIN_EXE_usdtkit"))
            .args(["trace", "--json", "--pid", &prog.id().to_string()])
            .arg(&exe)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(tracer.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut said = String::new();
        while !said.contains("attached") && Instant::now() < deadline {
            let mut l = String::new();
            if err.read_line(&mut l).unwrap() == 0 {
                break;
            }
            said.push_str(&l);
        }
        assert!(said.contains("attached"), "{name}: {said}");
        prog.stdin.take().unwrap().write_all(b"x").unwrap();
        assert!(prog.wait().unwrap().success());
        std::thread::sleep(Duration::from_millis(300));
        // Stop the tracer as Ctrl-C would.
        Command::new("kill")
            .args(["-INT", &tracer.id().to_string()])
            .status()
            .unwrap();
        let out = tracer.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            guarded_hits(&stdout),
            expected_guarded(fx),
            "{name}: {said}\n{stdout}"
        );
    }
}

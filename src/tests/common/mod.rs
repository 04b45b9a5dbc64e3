//! Helpers shared by integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Whether CI asked for a run where every requirement must be met (`CI=true`).
pub fn strict() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Check that a requirement of the test is met. When it is not, the test is skipped with the
/// reason printed, except under `CI=true`, where a missing requirement fails the test:
/// `ci/setup.sh` installs everything the tests need.
pub fn require(met: bool, what: &str) -> bool {
    if met {
        return true;
    }
    if strict() {
        panic!("requirement missing under CI=true: {what} (ci/setup.sh should install it)");
    }
    eprintln!("SKIP: {what}");
    false
}

/// `require` for a file.
pub fn require_file(path: &str, what: &str) -> bool {
    require(
        Path::new(path).exists(),
        &format!("{path} ({what}) is not installed"),
    )
}

/// One note as `readelf -n` prints it.
#[derive(Debug, PartialEq, Eq)]
pub struct ReadelfNote {
    pub provider: String,
    pub name: String,
    pub pc: u64,
    pub semaphore: u64,
    pub args: String,
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).expect("readelf prints hex")
}

pub fn readelf_notes(path: &str) -> Vec<ReadelfNote> {
    let out = Command::new("readelf")
        .args(["-n", "--wide", path])
        .output()
        .expect("readelf runs (binutils)");
    // binutils 2.40 warns (exit status 1) about a stapsdt note with bytes after its strings,
    // such as libbpf's `nop; nop5` marker, but still prints it.
    assert!(
        out.status.success() || !out.stdout.is_empty(),
        "readelf -n {path} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut notes = Vec::new();
    let mut cur: Option<ReadelfNote> = None;
    for line in text.lines().map(str::trim) {
        if line.contains("NT_STAPSDT") || line.starts_with("Provider: ") {
            // A new note: flush the previous one (a note without arguments has no
            // Arguments line).
            if let Some(n) = cur.take() {
                notes.push(n);
            }
            let provider = line.split_once("Provider: ").map_or("", |(_, p)| p);
            cur = Some(ReadelfNote {
                provider: provider.to_string(),
                name: String::new(),
                pc: 0,
                semaphore: 0,
                args: String::new(),
            });
        } else if let Some(n) = line.strip_prefix("Name: ") {
            cur.as_mut().expect("Name after Provider").name = n.to_string();
        } else if let Some(loc) = line.strip_prefix("Location: ") {
            let n = cur.as_mut().expect("Location after Provider");
            for part in loc.split(", ") {
                match part.split_once(": ") {
                    Some(("Semaphore", v)) => n.semaphore = hex(v),
                    Some(_) => {}
                    None => n.pc = hex(part),
                }
            }
        } else if let Some(a) = line.strip_prefix("Arguments:") {
            cur.as_mut().expect("Arguments after Provider").args = a.trim().to_string();
        }
    }
    if let Some(n) = cur.take() {
        notes.push(n);
    }
    notes
}

/// Our sites in the same form, for comparison with `readelf_notes`.
pub fn our_notes(usdt: &usdtkit::UsdtFile<'_>) -> Vec<ReadelfNote> {
    usdt.sites()
        .iter()
        .map(|s| ReadelfNote {
            provider: s.provider.to_string(),
            name: s.name.to_string(),
            pc: s.pc,
            semaphore: s.semaphore.unwrap_or(0),
            args: s.args_text.to_string(),
        })
        .collect()
}

/// Whether this process runs as root (BPF programs and uprobes need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Build the quick corpus with `seed` in a temporary directory named after `name` (the
/// directory path is absolute).
#[cfg(feature = "harness")]
pub fn quick_corpus(name: &str, seed: u64) -> (std::path::PathBuf, usdtkit::gen::Manifest) {
    let out = std::env::temp_dir().join(format!("usdtkit-{name}-{}", std::process::id()));
    let opts = usdtkit::gen::GenOptions {
        seed,
        profile: usdtkit::gen::Profile::Quick,
        out: out.clone(),
        progress: false,
    };
    let m = usdtkit::gen::generate(&opts).expect("quick corpus builds");
    (out, m)
}

/// fixtures/c/trace_demo.c (with trace_demo_sem.c) and its library trace_demo_lib.c, built
/// once per test binary with the system's C compiler: (program, library).
pub fn trace_demo() -> &'static (std::path::PathBuf, std::path::PathBuf) {
    static D: std::sync::OnceLock<(std::path::PathBuf, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    D.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/c");
        let dir = std::env::temp_dir().join(format!("usdtkit-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (bin, lib) = (dir.join("trace_demo"), dir.join("libtracedemo.so"));
        let builds: [(&std::path::PathBuf, Vec<std::ffi::OsString>); 2] = [
            (
                &bin,
                vec![
                    src.join("trace_demo.c").into(),
                    src.join("trace_demo_sem.c").into(),
                    "-O2".into(),
                    "-ldl".into(),
                ],
            ),
            (
                &lib,
                vec![
                    src.join("trace_demo_lib.c").into(),
                    "-O2".into(),
                    "-shared".into(),
                    "-fPIC".into(),
                ],
            ),
        ];
        for (out, args) in builds {
            let st = Command::new("cc")
                .args(&args)
                .arg("-o")
                .arg(out)
                .status()
                .expect("cc runs");
            assert!(st.success(), "building {}", out.display());
        }
        (bin, lib)
    })
}

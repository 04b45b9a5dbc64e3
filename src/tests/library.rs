//! usdtkit as a dependency sees it: errors keeping the kernel's errno and naming the file
//! (the `attach` feature alone), and with `libbpf-rs` the README's attach example built and
//! run for real (libbpf's own `usdt.bpf.h`, libbpf-rs, Python's probes), then detached.

mod common;

use std::os::fd::AsFd;
use std::path::Path;

use usdtkit::attach::{AttachErrorKind, UsdtAttacher};
use usdtkit::Error;

const PYTHON: &str = "/usr/bin/python3.11";

#[cfg(feature = "libbpf-rs")]
/// The fenced block of `lang` that follows the README's "## Attaching" heading.
fn readme_block(lang: &str) -> String {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Attaching").expect("an Attaching section")..];
    let fence = format!("```{lang}\n");
    let start = section.find(&fence).expect("the block") + fence.len();
    let len = section[start..].find("```\n").expect("its end");
    section[start..start + len].to_string()
}

#[cfg(feature = "libbpf-rs")]
/// The README's BPF program, compiled by the command its comment gives.
fn build_readme_bpf(dir: &Path) -> std::path::PathBuf {
    let c = readme_block("c");
    std::fs::write(dir.join("probe.bpf.c"), &c).unwrap();
    let mut cmd = c
        .lines()
        .find_map(|l| l.strip_prefix("// clang "))
        .expect("the build command in the example's comment")
        .to_string();
    if std::env::consts::ARCH == "aarch64" {
        cmd = cmd.replace("__TARGET_ARCH_x86", "__TARGET_ARCH_arm64");
    }
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("clang {cmd}"))
        .current_dir(dir)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "the README's BPF program does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("probe.bpf.o")
}

#[cfg(feature = "libbpf-rs")]
#[test]
fn the_readme_attach_example_runs() {
    let ok = common::is_root() && Path::new("/sys/kernel/tracing/trace").exists();
    if !common::require(ok, "root with BPF and tracefs") {
        return;
    }
    if !common::require_file(PYTHON, "Debian python3.11") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("usdtkit-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let obj_path = build_readme_bpf(&dir);
    // The example's own steps (its `main` attaches for a minute; here the hits are checked).
    let obj = libbpf_rs::ObjectBuilder::default()
        .open_file(&obj_path)
        .unwrap()
        .load()
        .unwrap();
    let prog = obj.progs().find(|p| p.name() == "on_entry").unwrap();
    let link = UsdtAttacher::for_program(&prog)
        .pid(-1)
        .attach(PYTHON, "python", "function__entry", 7)
        .unwrap();
    assert!(!link.sites().is_empty());
    assert!(link.warnings().is_empty(), "{:?}", link.warnings());
    // Python's start-up runs generators of its frozen modules, which fire function__entry
    // (Python 3.11 fires it when a frame is entered afresh); the lines name the process.
    let run = std::process::Command::new(PYTHON)
        .args(["-c", "pass"])
        .spawn()
        .unwrap();
    let pid = run.id();
    assert!(run.wait_with_output().unwrap().status.success());
    let trace = std::fs::read_to_string("/sys/kernel/tracing/trace").unwrap();
    let hits = trace
        .lines()
        .filter(|l| l.contains(&format!("-{pid} ")) && l.contains("python call at line"))
        .collect::<Vec<_>>();
    assert!(
        !hits.is_empty() && hits.iter().all(|l| l.ends_with(", cookie 7")),
        "no hit of process {pid} with cookie 7 in the trace buffer:\n{}",
        &trace[trace.len().saturating_sub(2000)..]
    );
    link.detach().unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn errors_keep_the_errno_and_the_place() {
    let e = usdtkit::MappedFile::open("/nonexistent/usdtkit").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");

    // Not a BPF program: the kernel's refusal comes back with its errno, and the file named.
    if !common::require_file(PYTHON, "Debian python3.11") {
        return;
    }
    let not_bpf = std::fs::File::open("/dev/null").unwrap();
    let e = UsdtAttacher::new(not_bpf.as_fd())
        .attach(PYTHON, "python", "function__entry", 0)
        .unwrap_err();
    let errno = e.raw_os_error();
    assert!(
        matches!(errno, Some(libc::EINVAL | libc::EBADF | libc::EPERM)),
        "{e}: {errno:?}"
    );
    match &e {
        Error::Attach { context, kind } => {
            assert_eq!(context.file.as_deref(), Some(Path::new(PYTHON)));
            assert!(matches!(kind, AttachErrorKind::Os { .. }), "{kind:?}");
        }
        other => panic!("not an attach error: {other:?}"),
    }
    assert!(e.to_string().starts_with(PYTHON), "{e}");

    // A library name found nowhere: NotFound, with what was searched.
    let e = UsdtAttacher::new(not_bpf.as_fd())
        .attach("libusdtkit-nowhere.so", "p", "n", 0)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Attach {
                kind: AttachErrorKind::NotFound { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.raw_os_error(), None);
}

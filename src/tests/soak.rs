//! Soak and crash safety on the real kernel (root with BPF): attach/detach cycles leave
//! nothing behind; a tracer killed by SIGKILL at any point leaves no semaphore raised and no
//! link; two tracers share a semaphore; and over random sequences of attach, detach, process
//! start and exit, every live process's semaphore is what the kernel's counting predicts.
//! Semaphores are read through /proc/PID/mem at the address the program itself prints.
//!
//! `USDTKIT_SOAK_CYCLES` (default 1,000), `USDTKIT_KILL_ROUNDS` (12) and
//! `USDTKIT_SEMAPHORE_CASES` (24) scale the runs.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use usdtkit::recorder::{Recorder, RecorderOptions};

static SERIAL: Mutex<()> = Mutex::new(());

fn privileged() -> Option<std::sync::MutexGuard<'static, ()>> {
    let ok = common::is_root() && Path::new("/sys/fs/bpf").exists();
    common::require(ok, "root with BPF").then(|| SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}

fn env_or(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// trace_demo `wait`: the process, its stdin, and the address of demo:guarded's semaphore.
struct Demo {
    child: Child,
    stdin: Option<ChildStdin>,
    sem: u64,
}

impl Demo {
    fn start() -> Demo {
        let mut child = Command::new(&common::trace_demo().0)
            .arg("wait")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().strip_prefix("ready 0x").expect("ready ADDRESS");
        let stdin = child.stdin.take();
        Demo {
            child,
            stdin,
            sem: u64::from_str_radix(addr, 16).unwrap(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The semaphore's value, read from the process's memory.
    fn semaphore(&self) -> u16 {
        let mem = std::fs::File::open(format!("/proc/{}/mem", self.pid())).unwrap();
        let mut b = [0u8; 2];
        mem.read_exact_at(&mut b, self.sem).unwrap();
        u16::from_ne_bytes(b)
    }

    fn fire(&mut self) {
        let s = self.stdin.as_mut().unwrap();
        s.write_all(b"x\n").unwrap();
        s.flush().unwrap();
    }

    fn end(mut self) {
        drop(self.stdin.take());
        self.child.wait().unwrap();
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// uprobe_multi links alive on the machine: every process's fds, read from fdinfo (a link
/// lives as long as an fd to it).
fn uprobe_links() -> usize {
    let mut n = 0;
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(p.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_to_string(fd.path()).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.starts_with("link_type:") && l.contains("uprobe_multi"))
            }) {
                n += 1;
            }
        }
    }
    n
}

/// Wait up to 2 s for `cond`.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

#[test]
fn attach_detach_cycles_leave_nothing_behind() {
    let Some(_g) = privileged() else { return };
    let cycles = env_or("USDTKIT_SOAK_CYCLES", 1000);
    let bin = common::trace_demo().0.to_str().unwrap().to_string();
    let demo = Demo::start();
    let pid = demo.pid() as i32;
    let mut storage = std::mem::MaybeUninit::uninit();
    let mut rec = Recorder::load(&mut storage, RecorderOptions::default()).unwrap();
    let cycle = |rec: &mut Recorder<'_>| -> Vec<u32> {
        let ids = rec
            .attach(&bin, &[("demo", "*")], pid, &[])
            .unwrap()
            .sites()
            .iter()
            .map(|s| s.spec_id)
            .collect();
        assert_eq!(demo.semaphore(), 1, "attached: the kernel raised it");
        rec.detach_all();
        ids
    };
    // Warm up (allocator blocks, libbpf's caches), then measure.
    let first = cycle(&mut rec);
    for _ in 0..20 {
        cycle(&mut rec);
    }
    let (fds, rss, links) = (open_fds(), rss_kib(), uprobe_links());
    for i in 0..cycles {
        let ids = cycle(&mut rec);
        assert_eq!(ids, first, "cycle {i}: spec ids not reused");
    }
    assert_eq!(demo.semaphore(), 0);
    assert_eq!(open_fds(), fds, "open fds grew over {cycles} cycles");
    assert_eq!(uprobe_links(), links, "links left behind");
    let grown = rss_kib().saturating_sub(rss);
    assert!(
        grown < 8 * 1024,
        "RSS grew by {grown} KiB over {cycles} cycles"
    );
    demo.end();
}

fn tracer(pid: u32) -> Child {
    let bin = common::trace_demo().0.display().to_string();
    Command::new(env!("CARGO_BIN_EXE_usdtkit"))
        .args([
            "trace",
            &format!("{bin}:demo:guarded"),
            "--pid",
            &pid.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A tracer, once it says it attached.
fn attached_tracer(pid: u32) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut t = tracer(pid);
    let mut err = BufReader::new(t.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("attached"), "{line}");
    (t, err)
}

fn kill9(t: &mut Child) {
    usdtkit::sys::process::signal_process(t.id(), libc::SIGKILL).unwrap();
    t.wait().unwrap();
}

#[test]
fn a_tracer_killed_at_any_point_leaves_no_semaphore_raised_and_no_link() {
    let Some(_g) = privileged() else { return };
    let rounds = env_or("USDTKIT_KILL_ROUNDS", 12);
    let demo = Demo::start();
    let links = uprobe_links();
    // Killed while loading, attaching, or attached: spread over the first half second.
    for i in 0..rounds {
        let delay = Duration::from_millis((i as u64 * 509) % 500);
        let mut t = tracer(demo.pid());
        std::thread::sleep(delay);
        kill9(&mut t);
        assert!(
            eventually(|| demo.semaphore() == 0 && uprobe_links() == links),
            "killed after {delay:?}: semaphore {}, links {} (before {links})",
            demo.semaphore(),
            uprobe_links()
        );
    }
    // And once surely attached.
    let (mut t, _err) = attached_tracer(demo.pid());
    assert_eq!(demo.semaphore(), 1);
    kill9(&mut t);
    assert!(eventually(
        || demo.semaphore() == 0 && uprobe_links() == links
    ));
    demo.end();
}

#[test]
fn two_tracers_on_one_semaphore_and_one_killed() {
    let Some(_g) = privileged() else { return };
    let mut demo = Demo::start();
    let (mut a, mut a_err) = attached_tracer(demo.pid());
    let (mut b, _b_err) = attached_tracer(demo.pid());
    // One site: the kernel counts the breakpoint it put in this process, not the links.
    assert_eq!(demo.semaphore(), 1);
    kill9(&mut b);
    assert_eq!(demo.semaphore(), 1, "the other tracer still needs it");
    demo.fire();
    let mut out = BufReader::new(a.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.contains("demo:guarded") && line.trim_end().ends_with("arg0=0"),
        "{line}"
    );
    usdtkit::sys::process::signal_process(a.id(), libc::SIGINT).unwrap();
    a.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut a_err, &mut rest).unwrap();
    assert_eq!(demo.semaphore(), 0, "{rest}");
    demo.end();
}

mod model {
    //! Random sequences of attach (for every process or one), detach, process start and
    //! exit, checked after every step against a plain model of the kernel's counting: a
    //! process's semaphore is 1 while some live link covers it (one site: the kernel raises
    //! it when it puts its breakpoint in the process, once however many links share it).
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Attach for every process (None) or for process k of the live ones.
        Attach(Option<usize>),
        /// Detach link k of the live ones.
        Detach(usize),
        Start,
        /// End process k of the live ones.
        End(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::option::of(0usize..4).prop_map(Op::Attach),
            (0usize..4).prop_map(Op::Detach),
            Just(Op::Start),
            (0usize..4).prop_map(Op::End),
        ]
    }

    fn run(ops: &[Op]) -> Result<(), TestCaseError> {
        let bin = common::trace_demo().0.to_str().unwrap().to_string();
        let mut procs: Vec<Demo> = vec![Demo::start()];
        // Live links: (which pid they cover, None for every process), each a recorder.
        let mut links: Vec<(Option<u32>, Recorder<'static>)> = Vec::new();
        for op in ops {
            match op {
                Op::Attach(who) => {
                    let pid = who.and_then(|k| procs.get(k % procs.len().max(1)).map(Demo::pid));
                    if who.is_some() && pid.is_none() {
                        continue;
                    }
                    // A recorder of its own per link, so that detaching is dropping it (its
                    // few bytes of storage are leaked to give it a 'static lifetime).
                    let s = Box::leak(Box::new(std::mem::MaybeUninit::uninit()));
                    let mut r = Recorder::load(s, RecorderOptions::default()).unwrap();
                    r.attach(
                        &bin,
                        &[("demo", "guarded")],
                        pid.map_or(-1, |p| p as i32),
                        &[],
                    )
                    .unwrap();
                    links.push((pid, r));
                }
                Op::Detach(k) => {
                    if !links.is_empty() {
                        let k = k % links.len();
                        links.remove(k);
                    }
                }
                Op::Start => procs.push(Demo::start()),
                Op::End(k) => {
                    if !procs.is_empty() {
                        let k = k % procs.len();
                        procs.remove(k).end();
                    }
                }
            }
            for p in &procs {
                let covered = links
                    .iter()
                    .any(|(pid, _)| pid.is_none() || *pid == Some(p.pid()));
                let want = u16::from(covered);
                prop_assert!(
                    eventually(|| p.semaphore() == want),
                    "after {op:?}: process {} semaphore {}, model {want}",
                    p.pid(),
                    p.semaphore()
                );
            }
        }
        drop(links);
        for p in procs {
            p.end();
        }
        Ok(())
    }

    #[test]
    fn semaphores_follow_the_kernels_counting() {
        let Some(_g) = privileged() else { return };
        let cases = env_or("USDTKIT_SEMAPHORE_CASES", 24) as u32;
        let config = ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        proptest!(config, |(ops in proptest::collection::vec(op(), 1..10))| {
            run(&ops)?;
        });
    }
}

//! Warming the kernel's uprobe registration while a large attach is planned.
//!
//! Every uprobe is registered under one global lock, a per-CPU reader-writer semaphore
//! (`dup_mmap_sem`, which fork takes to read). A writer first switches its readers to a slow
//! path and waits for an RCU grace period, so that every CPU has seen the switch; the switch
//! stays on for a grace period after the last writer leaves, and any writer meanwhile
//! finds it on and does not wait. So the first registration after a quiet spell waits a
//! grace period (milliseconds), and a link pays it before its first uprobe: for a large
//! link, a good part of its time (`benches/README.md` has the figures).
//!
//! A large attach does not wait for it: as it starts, a helper thread registers a uprobe of
//! its own (a one-site link on an anonymous file that no process maps, so that it can never
//! fire), which waits out the grace period while the attach reads its notes, and registers
//! again every [`AGAIN`] until the attach's link begins, to keep the switch on. It then
//! closes its links while the link is made (each close waits for grace periods of its own,
//! off the attaching thread) and ends. It touches no site and no spec: if anything in it
//! fails, the link is only as slow as it was.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::sys::{self, bpf};

/// How often the helper registers again until the link begins: shorter than a grace period
/// (a few milliseconds here), rarely enough that few links are left to close.
const AGAIN: Duration = Duration::from_millis(4);

/// Links the helper makes at most, however long the attach plans.
const MOST: usize = 8;

/// Attaches to files with at least this much of notes (about 11,000 sites) warm up: they
/// plan for long enough to hide much of the wait. A smaller one would gain little, and the
/// helper's links, closed as its own link is made, would still be waiting for their grace
/// periods when a quick detach of the attach waits for its own.
pub(super) const NOTES_BYTES: usize = 1 << 20;

/// A warm-up on its helper thread; dropping it (when the attach is about to link, or has
/// failed before) stops the helper's registrations.
pub(super) struct Warmup {
    stop: Arc<AtomicBool>,
    helper: std::thread::Thread,
}

impl Warmup {
    /// Start warming with `prog`, a program a uprobe_multi link takes (it never runs);
    /// `None` when no helper thread could be started.
    pub fn start(prog: BorrowedFd<'_>) -> Option<Warmup> {
        let prog = prog.try_clone_to_owned().ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("usdtkit-warm".into())
            .spawn(move || keep_warm(prog, &flag))
            .ok()?;
        Some(Warmup {
            stop,
            helper: handle.thread().clone(),
        })
    }
}

impl Drop for Warmup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.helper.unpark();
    }
}

/// The helper: register, then again every [`AGAIN`] until told to stop, then close.
fn keep_warm(prog: OwnedFd, stop: &AtomicBool) -> usize {
    let Ok(file) = sys::private_file(c"usdtkit-warm", 1) else {
        return 0;
    };
    let Ok(path) = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())) else {
        return 0;
    };
    let mut links = Vec::new();
    while !stop.load(Ordering::Acquire) && links.len() < MOST {
        match bpf::link_uprobe_multi(prog.as_fd(), &path, &[0], &[0], &[0], 0) {
            Ok(link) => links.push(link),
            Err(_) => break,
        }
        std::thread::park_timeout(AGAIN);
    }
    // Each close waits for grace periods; closed at once, they wait for the same ones.
    let made = links.len();
    std::thread::scope(|scope| {
        for link in links {
            scope.spawn(move || drop(link));
        }
    });
    made
}

#[cfg(all(test, feature = "recorder"))]
mod tests {
    use std::mem::MaybeUninit;

    use super::*;
    use crate::recorder::{Recorder, RecorderOptions};

    #[test]
    fn the_helper_links_on_a_file_no_process_maps_until_stopped() {
        let mut obj = MaybeUninit::uninit();
        let rec = match Recorder::load(&mut obj, RecorderOptions::default()) {
            Ok(r) => r,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("loading the recorder under CI=true: {e}")
            }
            Err(e) => {
                eprintln!("SKIP: loading the recorder needs root with BPF: {e}");
                return;
            }
        };
        let prog = rec.multi_program_fd().try_clone_to_owned().unwrap();
        let stop = AtomicBool::new(false);
        let links = std::thread::scope(|scope| {
            let helper = scope.spawn(|| keep_warm(prog, &stop));
            // Time for the first link (a grace period, longer on a loaded machine) and more.
            std::thread::sleep(Duration::from_millis(500));
            stop.store(true, Ordering::Release);
            helper.thread().unpark();
            helper.join().unwrap()
        });
        // Zero would mean the kernel refused the link: the warm-up would save nothing.
        assert!((2..=MOST).contains(&links), "{links} links");
    }
}

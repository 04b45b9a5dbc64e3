//! The `usdtkit` implementation: the recorder attached by usdtkit's own attach code.

use std::mem::MaybeUninit;
use std::path::Path;
use std::time::Duration;

use super::Implementation;
use crate::attach::AttachMode;
use crate::check::compare::{Observed, ObservedHit, Run};
use crate::check::run::Waiting;
use crate::check::select::Selection;
use crate::error::Result;
use crate::gen::Fixture;
use crate::recorder::{ArgValue, Hit, Recorder, RecorderOptions};

/// usdtkit's attach and recorder.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usdtkit {
    /// Recorder options (attach mode).
    pub opts: RecorderOptions,
    /// Attach before the fixture runs anything (held right after its `exec`, as `usdtkit
    /// trace -- COMMAND` does) instead of to a fixture already running.
    pub before_exec: bool,
}

impl Implementation for Usdtkit {
    fn name(&self) -> String {
        match (self.opts.mode, self.before_exec) {
            (AttachMode::PerfEvent, _) => "usdtkit-perf".into(),
            (_, true) => "usdtkit-exec".into(),
            _ => "usdtkit".into(),
        }
    }

    fn detect(&self) -> std::result::Result<String, String> {
        Ok(env!("CARGO_PKG_VERSION").to_string())
    }

    fn run(&self, dir: &Path, fx: &Fixture, sel: &Selection, limit: Duration) -> Result<Run> {
        run(dir, fx, sel, self.opts, self.before_exec, limit)
    }
}

/// A recorder hit as the harness compares it.
pub(crate) fn observed(h: Hit) -> ObservedHit {
    ObservedHit {
        provider: h.provider.to_string(),
        name: h.name.to_string(),
        pc: Some(h.pc),
        args: h
            .args
            .into_iter()
            .map(|a| match a {
                ArgValue::Int(v) => Observed::Int(v),
                ArgValue::Float(v) => Observed::Float(v),
                ArgValue::Error(e) => Observed::Error(e),
            })
            .collect(),
    }
}

/// Run one fixture under the recorder, attached to the selected probes of the executable
/// and its libraries for the fixture's pid only: to the fixture waiting to fire its probes,
/// or, `before_exec`, to the fixture held right after its `exec` (then semaphores the
/// kernel raised in the wrong mapping are moved once it reaches its entry point).
pub fn run(
    dir: &Path,
    fx: &Fixture,
    sel: &Selection,
    opts: RecorderOptions,
    before_exec: bool,
    limit: Duration,
) -> Result<Run> {
    let mut storage = MaybeUninit::uninit();
    let mut rec = Recorder::load(&mut storage, opts)?;
    let mut proc_ = if before_exec {
        Waiting::start_held(dir, fx)?
    } else {
        Waiting::start(dir, fx)?
    };
    let pid = proc_.pid() as i32;
    for path in sel.objects() {
        let probes: Vec<(&str, &str)> = sel
            .probes
            .iter()
            .filter(|w| w.probe.object == path)
            .map(|w| (w.probe.provider.as_str(), w.probe.name.as_str()))
            .collect();
        rec.attach(&path.to_string_lossy(), &probes, pid, &[])?;
    }
    let mut notes = Vec::new();
    if let Some(held) = proc_.held() {
        for n in rec.settle(held)? {
            notes.push(n);
        }
    }
    let mut hits = Vec::new();
    let mut poll_err = None;
    let (status, stdout) = proc_.release(limit, || match rec.drain() {
        Ok(h) => hits.extend(h),
        Err(e) => poll_err = Some(e),
    })?;
    if let Some(e) = poll_err {
        return Err(e);
    }
    hits.extend(rec.poll(Duration::from_millis(50))?);
    let stats = rec.stats()?;
    let lost = stats.lost;
    if stats.malformed > 0 {
        notes.push(format!(
            "{} recorder records malformed and not judged",
            stats.malformed
        ));
    }
    if !status.success() {
        return Err(crate::Error::Invalid(format!(
            "{} exited with {status}",
            fx.name
        )));
    }
    Ok(Run {
        hits: hits.into_iter().map(observed).collect(),
        stdout,
        notes,
        lost,
        ..Run::default()
    })
}

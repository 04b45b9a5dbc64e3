//! The `usdtkit` implementation: the recorder attached by usdtkit's own attach code.

use std::mem::MaybeUninit;
use std::path::Path;
use std::time::Duration;

use super::Implementation;
use crate::attach::AttachMode;
use crate::check::compare::{Observed, ObservedHit, Run};
use crate::check::run::Waiting;
use crate::error::Result;
use crate::gen::Fixture;
use crate::recorder::{ArgValue, Hit, Recorder, RecorderOptions};

/// usdtkit's attach and recorder.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usdtkit {
    /// Recorder options (attach mode).
    pub opts: RecorderOptions,
}

impl Implementation for Usdtkit {
    fn name(&self) -> String {
        match self.opts.mode {
            AttachMode::PerfEvent => "usdtkit-perf".into(),
            _ => "usdtkit".into(),
        }
    }

    fn detect(&self) -> std::result::Result<String, String> {
        Ok(env!("CARGO_PKG_VERSION").to_string())
    }

    fn run(&self, dir: &Path, fx: &Fixture, limit: Duration) -> Result<Run> {
        run(dir, fx, self.opts, limit)
    }
}

/// A recorder hit as the harness compares it.
pub(crate) fn observed(h: Hit) -> ObservedHit {
    ObservedHit {
        provider: h.provider,
        name: h.name,
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

/// Run one fixture under the recorder, attached to every probe of the executable and its
/// libraries for the fixture's pid only.
pub fn run(dir: &Path, fx: &Fixture, opts: RecorderOptions, limit: Duration) -> Result<Run> {
    let mut storage = MaybeUninit::uninit();
    let mut rec = Recorder::load(&mut storage, opts)?;
    let proc_ = Waiting::start(dir, fx)?;
    let pid = proc_.pid() as i32;
    for obj in std::iter::once(&fx.binary).chain(&fx.libraries) {
        let path = dir.join(obj);
        rec.attach(&path.to_string_lossy(), &[("*", "*")], pid, &[])?;
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
    if !status.success() {
        return Err(crate::Error::Invalid(format!(
            "{} exited with {status}",
            fx.name
        )));
    }
    Ok(Run {
        hits: hits.into_iter().map(observed).collect(),
        stdout,
        ..Run::default()
    })
}

//! The `usdtkit` implementation: the recorder attached by usdtkit's own attach code.

use std::mem::MaybeUninit;
use std::path::Path;
use std::time::Duration;

use super::compare::{Observed, ObservedHit};
use super::run::Waiting;
use crate::error::Result;
use crate::gen::Fixture;
use crate::recorder::{ArgValue, Hit, Recorder, RecorderOptions};

/// Observed hits and the fixture's stdout.
pub type RunOutput = (Vec<ObservedHit>, String);

fn observed(h: Hit) -> ObservedHit {
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
pub fn run(dir: &Path, fx: &Fixture, opts: RecorderOptions, limit: Duration) -> Result<RunOutput> {
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
    Ok((hits.into_iter().map(observed).collect(), stdout))
}

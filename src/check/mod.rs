//! The conformance harness: implementations run on the same fixtures, each argument judged
//! against the manifest.

pub mod compare;
pub mod run;
pub mod usdtkit;

pub use self::compare::{compare, tally, ArgResult, Observed, ObservedHit, Outcome};

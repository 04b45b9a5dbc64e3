//! # usdtkit
//!
//! Read, decode and attach Linux USDT probes (the SystemTap `.note.stapsdt` probes).
//!
//! - [`UsdtFile`] reads the probes of an ELF file of any class, byte order and architecture;
//!   [`MappedFile`] maps a file from disk to read it without copying.
//! - [`arg`] decodes argument strings (`-4@-12(%rbp)`) for the file's architecture, chosen at
//!   run time from its header.
//!
//! Malformed input gives an error naming the file, note, probe, site and argument; it never
//! panics, and one bad note or argument does not hide the others.
//!
//! ```no_run
//! let file = usdtkit::MappedFile::open("/usr/bin/python3.11")?;
//! let usdt = file.usdt()?;
//! for probe in usdt.probes() {
//!     println!("{}:{} ({} sites)", probe.provider, probe.name, probe.sites.len());
//! }
//! # Ok::<(), usdtkit::Error>(())
//! ```
//!
//! ## Features
//!
//! With `default-features = false` the crate is the pure-Rust reader and decoder above: no C
//! compiler, no `-sys` crate. The rest is optional:
//!
//! | feature | adds |
//! |---|---|
//! | `serde` | `Serialize` for the public types |
//! | `attach` | `attach`: a loaded BPF program attached to probes, libbpf's `usdt.bpf.h` ABI |
//! | `libbpf-rs` | `attach::UsdtAttacher::for_program` for libbpf-rs programs (C libbpf) |
//! | `recorder` | `recorder`: usdtkit's own BPF program and its hits (build needs clang) |
//! | `harness` | `gen`, `check`, `bench`, `synth`: the project's test harness, not semver-stable |
//! | `cli` (default) | the `usdtkit` command |
#![warn(missing_docs)]
// Every system call and every `unsafe` block lives in `sys` (and the generated skeleton).
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod arch;
pub mod arg;
pub mod elf;
pub mod error;
pub mod note;
mod parallel;
pub mod probe;
pub mod procmaps;

#[cfg(feature = "attach")]
#[cfg_attr(docsrs, doc(cfg(feature = "attach")))]
pub mod attach;
#[cfg(feature = "recorder")]
#[cfg_attr(docsrs, doc(cfg(feature = "recorder")))]
pub mod recorder;

#[cfg(feature = "harness")]
#[cfg_attr(docsrs, doc(cfg(feature = "harness")))]
pub mod bench;
#[cfg(feature = "harness")]
#[cfg_attr(docsrs, doc(cfg(feature = "harness")))]
pub mod check;
#[cfg(feature = "harness")]
#[cfg_attr(docsrs, doc(cfg(feature = "harness")))]
pub mod gen;
#[cfg(feature = "harness")]
#[cfg_attr(docsrs, doc(cfg(feature = "harness")))]
pub mod synth;

// System calls and `unsafe`. The harness and the command use its process helpers.
#[cfg(feature = "harness")]
#[doc(hidden)]
pub mod sys;
#[cfg(not(feature = "harness"))]
mod sys;

pub use arch::Arch;
pub use arg::{decode_args, Arg, ArgList, ArgSpec, Extend, Location, Reg, SymbolLocation};
pub use error::{ArgError, ArgErrorKind, Context, Error, NoteError, NoteErrorKind, Result};
pub use probe::{MappedFile, Probe, Site, UsdtFile};

// The README's examples, compiled as doc tests.
#[cfg(all(doctest, feature = "libbpf-rs"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

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
#![warn(missing_docs)]
// Every system call and every `unsafe` block lives in `sys` (and the generated skeleton).
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod arch;
pub mod arg;
pub mod attach;
pub mod bench;
pub mod check;
pub mod elf;
pub mod error;
pub mod gen;
pub mod note;
pub mod probe;
pub mod procmaps;
pub mod recorder;
pub mod synth;
pub mod sys;

pub use arch::Arch;
pub use arg::{decode_args, Arg, ArgList, ArgSpec, Extend, Location, Reg, SymbolLocation};
pub use error::{ArgError, ArgErrorKind, Error, NoteError, NoteErrorKind, Result};
pub use probe::{MappedFile, Probe, Site, UsdtFile};

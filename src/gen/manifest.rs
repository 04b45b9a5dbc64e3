//! `manifest.json`: what the generator built and what every probe hit must report.
//!
//! Expected values come from the generator's own knowledge of what each fixture passes to
//! its probes, never from usdtkit's decoder, so the corpus can catch decoder bugs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Version of the manifest format.
pub const MANIFEST_VERSION: u32 = 2;

/// The line prefix a fixture prints on stdout for a value only known at run time:
/// `usdtkit-rt HIT ARG VALUE` (hit index in the fixture's expected hits, 0-based argument
/// index, value as an unsigned decimal).
pub const RUNTIME_PREFIX: &str = "usdtkit-rt";

/// The argument that makes a fixture wait for one byte on stdin before any probe fires.
pub const WAIT_ARG: &str = "--wait";

/// The whole corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The seed the corpus was generated from.
    pub seed: u64,
    /// The profile name.
    pub profile: String,
    /// Every fixture built.
    pub fixtures: Vec<Fixture>,
}

/// One runnable fixture: an executable (and the libraries it loads) with its expected hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fixture {
    /// Unique name, e.g. `c-gcc-O2-pie`.
    pub name: String,
    /// The executable, relative to the manifest's directory.
    pub binary: PathBuf,
    /// Shared libraries with probes that the executable loads, relative paths.
    pub libraries: Vec<PathBuf>,
    /// Sources it was built from, relative paths.
    pub sources: Vec<PathBuf>,
    /// Compiler command (`gcc`, `clang`, `g++`...).
    pub compiler: String,
    /// The compiler's version line.
    pub compiler_version: String,
    /// Flags that distinguish this build (`-O2`, `-pie`, `-m32`...).
    pub flags: Vec<String>,
    /// What wrote the notes, when not `sys/sdt.h` (`rust-probe`: the `probe` crate;
    /// `rust-usdt`: the `usdt` crate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emitter: Option<String>,
    /// The linker, when not the compiler's default GNU ld (`lld`, `bfd` for a Rust build
    /// told to use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linker: Option<String>,
    /// Architecture name (as `usdtkit decode --arch` takes it).
    pub arch: String,
    /// Arguments to run it with (the wait argument, when wanted, comes first).
    pub args: Vec<String>,
    /// Whether it can run on this machine (foreign-architecture fixtures cannot).
    pub runnable: bool,
    /// How a foreign-architecture fixture runs under user-mode emulation, when it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulator: Option<Emulator>,
    /// The hits, in the order the fixture fires them.
    pub hits: Vec<Hit>,
}

/// A user-mode emulator for a foreign-architecture fixture: `COMMAND -L SYSROOT PROGRAM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emulator {
    /// The emulator (`qemu-aarch64`...), found on `PATH`.
    pub command: String,
    /// Where the target's dynamic loader and libraries are (`/usr/aarch64-linux-gnu`).
    pub sysroot: PathBuf,
}

/// One expected probe hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// Provider.
    pub provider: String,
    /// Probe name.
    pub name: String,
    /// The file holding the probe (the executable or one of the libraries), relative path.
    pub object: PathBuf,
    /// Whether the probe is guarded by a semaphore (it fires only while a tracer raised it).
    pub semaphore: bool,
    /// Expected argument values, in order.
    pub args: Vec<Expected>,
}

/// An expected argument value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Expected {
    /// An integer, already sign- or zero-extended per the argument's size and signedness.
    Int {
        /// The value.
        value: IntValue,
        /// The C type passed (for reports).
        ctype: String,
    },
    /// A floating-point value (arguments marked `f`).
    Float {
        /// The value.
        value: f64,
        /// The C type passed.
        ctype: String,
    },
    /// A value only known at run time (an address): the fixture prints it on stdout as
    /// `usdtkit-rt HIT ARG VALUE` before the hit.
    Runtime {
        /// The C type passed.
        ctype: String,
    },
    /// A value wider than 8 bytes (a struct by value): its bytes in memory order, as hex.
    Bytes {
        /// Lower-case hex of the bytes.
        hex: String,
        /// The C type passed.
        ctype: String,
    },
}

/// An integer that may need the full unsigned or signed 64-bit range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntValue {
    /// Non-negative values.
    Unsigned(u64),
    /// Negative values.
    Signed(i64),
}

impl IntValue {
    /// From an `i128` holding a value of either range.
    pub fn from_i128(v: i128) -> Self {
        if v >= 0 {
            IntValue::Unsigned(v as u64)
        } else {
            IntValue::Signed(v as i64)
        }
    }

    /// As an `i128`.
    pub fn as_i128(self) -> i128 {
        match self {
            IntValue::Unsigned(v) => v.into(),
            IntValue::Signed(v) => v.into(),
        }
    }
}

#[cfg(test)]
impl Fixture {
    /// A runnable x86-64 fixture `f` of executable `binary` with `hits`, for unit tests.
    pub(crate) fn for_tests(binary: &str, hits: Vec<Hit>) -> Fixture {
        Fixture {
            name: "f".into(),
            binary: binary.into(),
            libraries: vec![],
            sources: vec![],
            compiler: "cc".into(),
            compiler_version: String::new(),
            flags: vec![],
            emitter: None,
            linker: None,
            arch: "x86_64".into(),
            args: vec![],
            runnable: true,
            emulator: None,
            hits,
        }
    }
}

impl Manifest {
    /// Read `DIR/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!("{}: not a usdtkit manifest: {e}", path.display()))
        })?;
        if m.version != MANIFEST_VERSION {
            return Err(Error::Invalid(format!(
                "{}: manifest version {}, this usdtkit reads version {MANIFEST_VERSION}: rebuild the corpus with `usdtkit gen`",
                path.display(),
                m.version
            )));
        }
        Ok(m)
    }

    /// Write `DIR/manifest.json`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join("manifest.json");
        let text = serde_json::to_string_pretty(self).expect("manifest serialises");
        std::fs::write(&path, text + "\n").map_err(|source| Error::Io { path, source })
    }
}

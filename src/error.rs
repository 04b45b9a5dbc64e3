//! Error types.
//!
//! Errors come at three levels, each naming where the problem is:
//! - [`Error`]: the whole file could not be used (missing, not ELF, truncated headers).
//! - [`NoteError`]: one `.note.stapsdt` note is malformed; the other probes of the file stay
//!   usable.
//! - [`ArgError`]: one argument of one site could not be decoded; the other arguments and the
//!   site itself stay usable.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::arch::Arch;

/// A `Result` whose error is usdtkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A file-level error: the file as a whole could not be read or is not a usable ELF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening, mapping or reading the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The bytes are not an ELF file usdtkit can read (bad magic, truncated headers...).
    #[error("{}: not a readable ELF file: {reason}", path.display())]
    Elf {
        /// The file (`<memory>` for a buffer parsed without a path).
        path: PathBuf,
        /// What is wrong, as the ELF reader reported it.
        reason: String,
    },
    /// A usage error: the caller asked for something that does not exist.
    #[error("{0}")]
    Invalid(String),
    /// Attaching to probes failed; nothing stays attached.
    #[error("{}{}{}: {cause}", file.display(), probe.as_ref().map(|p| format!(": probe {p}")).unwrap_or_default(), site.map(|s| format!(", site {s:#x}")).unwrap_or_default())]
    Attach {
        /// The binary or library.
        file: PathBuf,
        /// The probe, when one is concerned.
        probe: Option<String>,
        /// The site, when one is concerned.
        site: Option<u64>,
        /// What went wrong.
        cause: String,
    },
    /// An external command (a compiler, a peer tool) failed. Harness API.
    #[cfg(feature = "harness")]
    #[doc(hidden)]
    #[error("{command}: {detail}")]
    Command {
        /// The command as run.
        command: String,
        /// Its exit status and error output, or why it could not start.
        detail: String,
    },
}

impl Error {
    pub(crate) fn elf(reason: impl fmt::Display) -> Self {
        Error::Elf {
            path: PathBuf::from("<memory>"),
            reason: reason.to_string(),
        }
    }

    /// Attach a path to an error that was raised without one (buffers parsed from memory).
    pub fn with_path(self, p: impl Into<PathBuf>) -> Self {
        match self {
            Error::Elf { reason, .. } => Error::Elf {
                path: p.into(),
                reason,
            },
            other => other,
        }
    }
}

/// One `.note.stapsdt` note that could not be turned into a probe site.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("note #{index} (byte {section_offset:#x} of .note.stapsdt){}: {kind}", describe_site(.provider, .name, .pc))]
pub struct NoteError {
    /// Index of the note within `.note.stapsdt` (0-based, counting every note seen).
    pub index: usize,
    /// Byte offset of the note header within the section.
    pub section_offset: u64,
    /// The provider, when it could be read.
    pub provider: Option<String>,
    /// The probe name, when it could be read.
    pub name: Option<String>,
    /// The site address (after the prelink adjustment), when it could be read.
    pub pc: Option<u64>,
    /// What is wrong.
    pub kind: NoteErrorKind,
}

fn describe_site(provider: &Option<String>, name: &Option<String>, pc: &Option<u64>) -> String {
    let mut s = String::new();
    if let (Some(p), Some(n)) = (provider, name) {
        s.push_str(&format!(", probe {p}:{n}"));
    }
    if let Some(pc) = pc {
        s.push_str(&format!(", site {pc:#x}"));
    }
    s
}

/// What is wrong with a note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteErrorKind {
    /// The note header or its sizes do not fit the section; the walk resynchronised at the
    /// next plausible `stapsdt` note header.
    #[error("malformed note header: {0}")]
    Header(String),
    /// The descriptor is shorter than its three address words and three strings.
    #[error("descriptor truncated: {0}")]
    Truncated(&'static str),
    /// A string of the descriptor is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// The provider or probe name is empty.
    #[error("empty {0}")]
    Empty(&'static str),
    /// The site address lies in no PT_LOAD segment.
    #[error("site address {0:#x} is in no loadable segment")]
    SiteNotMapped(u64),
    /// The site address lies in a segment that is not executable.
    #[error("site address {0:#x} is in a non-executable segment")]
    SiteNotExecutable(u64),
    /// The semaphore address lies in no PT_LOAD segment.
    #[error("semaphore address {0:#x} is in no loadable segment")]
    SemaphoreNotMapped(u64),
    /// The semaphore address lies in an executable segment.
    #[error("semaphore address {0:#x} is in an executable segment")]
    SemaphoreExecutable(u64),
    /// The argument string has more arguments than any USDT site can (sys/sdt.h writes at
    /// most 12).
    #[error("more than {0} arguments")]
    TooManyArgs(usize),
}

/// One argument that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument #{index} `{text}`: {kind}")]
pub struct ArgError {
    /// 0-based position of the argument in the site's argument string.
    pub index: usize,
    /// The argument's text as it appears in the note.
    pub text: String,
    /// What is wrong.
    pub kind: ArgErrorKind,
}

/// What is wrong with an argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgErrorKind {
    /// The `SIZE@` prefix is not a valid size.
    #[error("invalid size prefix `{0}` (expected [-]N[f]@ with N in 1, 2, 4, 8 or above 8)")]
    BadSize(String),
    /// The operand names a register the architecture does not have.
    #[error("unknown register `{reg}` for {arch}")]
    UnknownRegister {
        /// The register as written.
        reg: String,
        /// The architecture the argument was decoded for.
        arch: Arch,
    },
    /// The operand does not follow the architecture's grammar.
    #[error("cannot parse operand `{operand}`: {reason}")]
    Syntax {
        /// The operand (text after `@`).
        operand: String,
        /// Why it is rejected.
        reason: String,
    },
    /// No decoder exists for the file's architecture.
    #[error("no argument decoder for architecture {0}")]
    UnsupportedArch(Arch),
    /// The operand names a symbol that is in neither `.symtab` nor `.dynsym`.
    #[error("symbol `{0}` is not defined in .symtab or .dynsym")]
    UnresolvedSymbol(String),
    /// The operand names a symbol defined more than once, and the site does not tell which.
    #[error("symbol `{symbol}` is ambiguous: {count} definitions at different addresses")]
    AmbiguousSymbol {
        /// The symbol.
        symbol: String,
        /// How many distinct addresses it has.
        count: usize,
    },
}

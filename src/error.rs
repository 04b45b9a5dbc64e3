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

/// Where a problem is: the file, note, probe, site and argument it concerns, as far as they
/// are known. Every error of this crate renders its place through this one type:
/// `FILE: note #N, probe PROVIDER:NAME, site 0xADDR, argument #I `TEXT``.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Context {
    /// The file.
    pub file: Option<PathBuf>,
    /// Index of the note in `.note.stapsdt`.
    pub note: Option<usize>,
    /// `provider:name`, or the patterns asked for.
    pub probe: Option<String>,
    /// The site's address.
    pub site: Option<u64>,
    /// The argument's index and text.
    pub arg: Option<(usize, String)>,
}

impl Context {
    /// A context naming only `file`.
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Context {
            file: Some(file.into()),
            ..Context::default()
        }
    }

    /// The same, naming the probe.
    pub fn probe(mut self, probe: impl Into<String>) -> Self {
        self.probe = Some(probe.into());
        self
    }

    /// The same, naming the site (and its note).
    pub fn site(mut self, pc: u64, note: Option<usize>) -> Self {
        self.site = Some(pc);
        self.note = note.or(self.note);
        self
    }

    /// The same, naming the argument.
    pub fn arg(mut self, index: usize, text: impl Into<String>) -> Self {
        self.arg = Some((index, text.into()));
        self
    }

    fn is_empty(&self) -> bool {
        *self == Context::default()
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            sep = ": ";
        }
        let mut part = |f: &mut fmt::Formatter<'_>, args: fmt::Arguments<'_>| {
            let r = write!(f, "{sep}{args}");
            sep = ", ";
            r
        };
        if let Some(n) = self.note {
            part(f, format_args!("note #{n}"))?;
        }
        if let Some(p) = &self.probe {
            part(f, format_args!("probe {p}"))?;
        }
        if let Some(pc) = self.site {
            part(f, format_args!("site {pc:#x}"))?;
        }
        if let Some((i, text)) = &self.arg {
            part(f, format_args!("argument #{i} `{text}`"))?;
        }
        Ok(())
    }
}

/// `CONTEXT: what`, or `what` alone when nothing is known of the place.
fn located(f: &mut fmt::Formatter<'_>, at: &Context, what: &dyn fmt::Display) -> fmt::Result {
    if at.is_empty() {
        write!(f, "{what}")
    } else {
        write!(f, "{at}: {what}")
    }
}

/// An error of usdtkit: what went wrong and where.
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
    /// A malformed note (see [`UsdtFile::errors`](crate::UsdtFile::errors)).
    #[error(transparent)]
    Note(Box<NoteError>),
    /// An argument of a site that could not be decoded (see
    /// [`Site::arg_spec`](crate::Site::arg_spec)).
    #[error("{}", Located(.context, &.source.kind))]
    Arg {
        /// File (when known), note, probe, site and argument.
        context: Box<Context>,
        /// What is wrong with the argument.
        #[source]
        source: ArgError,
    },
    /// Attaching to probes failed; nothing stays attached.
    #[cfg(feature = "attach")]
    #[cfg_attr(docsrs, doc(cfg(feature = "attach")))]
    #[error("{}", Located(.context, .kind))]
    Attach {
        /// The file, and the probe and site when one is concerned.
        context: Box<Context>,
        /// What went wrong; its source keeps the operating system's error.
        #[source]
        kind: crate::attach::AttachErrorKind,
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

/// A context and what happened there, rendered by [`located`].
struct Located<'a, T>(&'a Context, &'a T);

impl<T: fmt::Display> fmt::Display for Located<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        located(f, self.0, self.1)
    }
}

impl Error {
    pub(crate) fn elf(reason: impl fmt::Display) -> Self {
        Error::Elf {
            path: PathBuf::from("<memory>"),
            reason: reason.to_string(),
        }
    }

    /// An attach error at `context`.
    #[cfg(feature = "attach")]
    #[cfg_attr(docsrs, doc(cfg(feature = "attach")))]
    pub fn attach(context: Context, kind: crate::attach::AttachErrorKind) -> Self {
        Error::Attach {
            context: Box::new(context),
            kind,
        }
    }

    /// Name the file in an error raised without one (buffers parsed from memory).
    pub fn with_path(self, p: impl Into<PathBuf>) -> Self {
        match self {
            Error::Elf { reason, .. } => Error::Elf {
                path: p.into(),
                reason,
            },
            Error::Note(mut e) if e.file.is_none() => {
                e.file = Some(p.into());
                Error::Note(e)
            }
            Error::Arg {
                mut context,
                source,
            } if context.file.is_none() => {
                context.file = Some(p.into());
                Error::Arg { context, source }
            }
            other => other,
        }
    }

    /// Where the error is, when it concerns a place in a file.
    pub fn context(&self) -> Option<&Context> {
        match self {
            Error::Arg { context, .. } => Some(context),
            #[cfg(feature = "attach")]
            Error::Attach { context, .. } => Some(context),
            _ => None,
        }
    }

    /// The operating system's error number behind this error, if one is (`EPERM` when not
    /// allowed to load or attach, `ENOENT` for a missing file...).
    pub fn raw_os_error(&self) -> Option<i32> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<io::Error>() {
                return io.raw_os_error();
            }
            cause = e.source();
        }
        None
    }
}

/// One `.note.stapsdt` note that could not be turned into a probe site.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct NoteError {
    /// The file, when the note was read through [`MappedFile`](crate::MappedFile) (`None`
    /// for bytes parsed from memory; [`Error::with_path`] sets it).
    pub file: Option<PathBuf>,
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

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = format_args!(
            "{} (byte {:#x} of .note.stapsdt)",
            self.kind, self.section_offset
        );
        located(f, &self.context(), &what)
    }
}

impl std::error::Error for NoteError {}

impl From<NoteError> for Error {
    fn from(e: NoteError) -> Self {
        Error::Note(Box::new(e))
    }
}

impl NoteError {
    /// Where the note is.
    pub fn context(&self) -> Context {
        Context {
            file: self.file.clone(),
            note: Some(self.index),
            probe: match (&self.provider, &self.name) {
                (Some(p), Some(n)) => Some(format!("{p}:{n}")),
                _ => None,
            },
            site: self.pc,
            arg: None,
        }
    }
}

/// What is wrong with a note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
///
/// Sites with the same argument string share their decoded arguments, so this names the
/// argument only; [`Site::arg_spec`](crate::Site::arg_spec) gives it with its site as an
/// [`Error::Arg`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
    /// The file's symbol tables could not be read, so the symbol could not be looked up.
    #[error("symbol `{symbol}`: the symbol tables cannot be read: {reason}")]
    SymbolTable {
        /// The symbol.
        symbol: String,
        /// What is wrong with the tables.
        reason: String,
    },
    /// The operand names a symbol defined more than once, and the site does not tell which.
    #[error("symbol `{symbol}` is ambiguous: {count} definitions at different addresses")]
    AmbiguousSymbol {
        /// The symbol.
        symbol: String,
        /// How many distinct addresses it has.
        count: usize,
    },
}

//! Why an attach failed: [`AttachErrorKind`], carried by [`Error::Attach`](crate::Error::Attach)
//! with the file, probe and site it concerns.

use std::io;

use crate::arch::Arch;

/// What went wrong while attaching (or finding the file to attach to).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachErrorKind {
    /// A system call failed: `source` keeps its errno (`EPERM`, `ENOENT`, `EOPNOTSUPP`...).
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// The file was not found (named without a `/`, or not mapped by the process).
    #[error("{what}{}", hint(.near))]
    NotFound {
        /// What was looked for, and where.
        what: String,
        /// Files with close names, to suggest.
        near: Vec<String>,
    },
    /// The file is for another architecture than the kernel's.
    #[error("the file is for {file}: its processes do not run under this{} kernel", host.map(|h| format!(" {h}")).unwrap_or_default())]
    WrongArch {
        /// The file's architecture.
        file: Arch,
        /// The host's, when usdtkit knows it.
        host: Option<Arch>,
    },
    /// The file has no `.note.stapsdt` notes.
    #[error("the file has no USDT probes (no .note.stapsdt notes)")]
    NoProbes,
    /// No probe of the file matches what was asked for (in the error's context).
    #[error("no such probe (the file has {total} probes: {}{})", some.join(", "), if *total > some.len() { ", ..." } else { "" })]
    NoSuchProbe {
        /// How many probes the file has.
        total: usize,
        /// The first few of them, `provider:name`.
        some: Vec<String>,
    },
    /// A site has more arguments than libbpf's spec holds.
    #[error("{count} arguments: a spec holds at most {max}")]
    TooManyArgs {
        /// The site's arguments.
        count: usize,
        /// What a spec holds.
        max: usize,
    },
    /// The BPF program was not built with libbpf's `usdt.bpf.h`, or with a layout of its maps
    /// that usdtkit does not know.
    #[error("{0}")]
    Program(String),
    /// `__bpf_usdt_specs` has no free entry.
    #[error("__bpf_usdt_specs is full ({capacity} entries, {in_use} distinct specs in use here{}); raise BPF_USDT_MAX_SPEC_CNT in the BPF program", others_text(*.others, .pids))]
    SpecsFull {
        /// The map's entries.
        capacity: u32,
        /// Distinct specs this process holds.
        in_use: usize,
        /// Ids other usdtkit processes hold.
        others: u32,
        /// Those processes.
        pids: Vec<u32>,
    },
    /// The path cannot be passed to the kernel.
    #[error("the path contains a NUL byte")]
    NulInPath,
    /// In automatic mode, neither interface worked: both reasons.
    #[error("{multi}; and per site: {per_site}")]
    BothFailed {
        /// Why the uprobe_multi link failed.
        #[source]
        multi: Box<AttachErrorKind>,
        /// Why the perf-event attach failed.
        per_site: Box<AttachErrorKind>,
    },
}

impl AttachErrorKind {
    /// A failed system call.
    pub(crate) fn os(what: impl Into<String>, source: io::Error) -> Self {
        AttachErrorKind::Os {
            what: what.into(),
            source,
        }
    }
}

fn hint(near: &[String]) -> String {
    match near {
        [] => String::new(),
        [one] => format!(" (did you mean {one}?)"),
        more => format!(" (did you mean one of {}?)", more.join(", ")),
    }
}

fn others_text(others: u32, pids: &[u32]) -> String {
    if others == 0 {
        String::new()
    } else {
        format!(", {others} ids held by usdtkit processes {pids:?}")
    }
}

//! Command-line interface. Exit status: 0 on success, 1 when any input could not be read or
//! decoded (the rest is still printed), 2 on usage errors (clap's own).

mod bench;
mod check;
mod gen;
mod list;
mod trace;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use usdtkit::gen::Profile;
use usdtkit::{decode_args, Arch};

/// Read, decode and attach Linux USDT probes.
#[derive(Debug, Parser)]
#[command(name = "usdtkit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the USDT probes of ELF files: provider, name, sites, semaphores, arguments.
    List {
        /// Print one JSON object per file instead of a table.
        #[arg(long)]
        json: bool,
        /// ELF executables or shared libraries.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Generate and build the fixture corpus (C, C++ and assembly programs whose probe
    /// arguments have known values), or count the encodings of a built one.
    Gen {
        /// Seed of every random choice: the same seed gives the same corpus.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// quick, default, or scale:PROBES:SITES[:sparse].
        #[arg(long, default_value = "default")]
        profile: Profile,
        /// Output directory (default: target/usdtkit-fixtures/PROFILE-SEED).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only count the encodings present in the corpus at DIR.
        #[arg(long, value_name = "DIR")]
        stats: Option<PathBuf>,
        /// Print statistics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run USDT implementations on the fixture corpus, judge every argument, and write the
    /// matrix report (report.json, report.md, report.html) and the findings (findings.md,
    /// findings.json).
    Check {
        /// A corpus built by `usdtkit gen` (default: build or reuse the profile's).
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Profile to build when no corpus is given.
        #[arg(long, default_value = "default")]
        profile: Profile,
        /// Seed to build with when no corpus is given.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Implementations, comma-separated: usdtkit, usdtkit-perf, libbpf, bpftrace, bcc,
        /// gdb, perf (each tool: every version installed; TOOL@host or TOOL@debian13 for one),
        /// usdtkit-qemu and gdb-qemu (foreign-architecture fixtures under qemu-user),
        /// ext:COMMAND, or all.
        #[arg(long = "impl", value_delimiter = ',', default_value = "all")]
        impls: Vec<String>,
        /// Only these fixtures (comma-separated names).
        #[arg(long = "fixture", value_delimiter = ',')]
        fixtures: Vec<String>,
        /// Only these probes (comma-separated PROVIDER:NAME).
        #[arg(long = "probe", value_delimiter = ',')]
        probes: Vec<String>,
        /// Fixtures checked at once (each by one implementation at a time).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Where to write the reports (default: CORPUS/report).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Print the whole report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Show every non-passing argument, not only wrong ones.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Trace probes: attach the recorder and print every hit. TARGET is
    /// PATH[:PROVIDER[:NAME]] with `*` wildcards; PATH may be a library name (libc.so).
    Trace {
        /// What to trace.
        target: String,
        /// Only this process (default: every process, or the command's).
        #[arg(long)]
        pid: Option<i32>,
        /// Argument indexes to read as C strings, comma-separated.
        #[arg(long = "str", value_delimiter = ',')]
        strings: Vec<usize>,
        /// One JSON object per hit.
        #[arg(long)]
        json: bool,
        /// A command to run and trace (attached before it runs; exits with its status).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Quick performance comparisons without a full criterion run.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Decode argument strings without a file; prints one JSON object per argument.
    Decode {
        /// Architecture whose grammar to use (x86_64, i386, ...).
        #[arg(long)]
        arch: Arch,
        /// Argument strings, e.g. '-4@%eax 8@(%rsp)'.
        #[arg(required = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Attach and detach N sites in K probe names with P processes running, per
    /// implementation (usdtkit: one uprobe_multi link; libbpf: attach_usdt per probe name;
    /// kernel: one raw uprobe_multi link over precomputed offsets).
    Attach {
        /// Sites in all.
        #[arg(long, default_value_t = 1000)]
        sites: usize,
        /// Probe names.
        #[arg(long, default_value_t = 100)]
        probes: usize,
        /// Processes mapping the binary.
        #[arg(long, default_value_t = 0)]
        procs: usize,
        /// One site per page instead of adjacent sites.
        #[arg(long)]
        sparse: bool,
        /// Rounds (each attaches and detaches every implementation once, the order rotating
        /// between rounds); times and ratios are medians over the rounds.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// Implementations, comma-separated.
        #[arg(
            long = "impl",
            value_delimiter = ',',
            default_value = "usdtkit,libbpf,kernel"
        )]
        impls: Vec<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Parsing against a bare walk of the notes with `object`, timed in alternating pairs
    /// (median ratio over the rounds). Without FILES: the installed real binaries
    /// (libjvm.so, postgres, python3.11) and generated files of 1,000 to 100,000 sites.
    Parse {
        /// ELF files to measure instead of the standard inputs.
        files: Vec<std::path::PathBuf>,
        /// Rounds per input (each about 10 ms of each side).
        #[arg(long, default_value_t = 21)]
        rounds: usize,
        /// JSON output (one array).
        #[arg(long)]
        json: bool,
        /// Only the input with this name: a standard input's (`libjvm.so`, `generated-10000`...;
        /// the others are not generated), or a FILE as given.
        #[arg(long)]
        only: Option<String>,
        /// Run one side this many times over each input, untimed, and print nothing else:
        /// for profilers (`valgrind --tool=callgrind` counts a parse's instructions as the
        /// difference between `--repeat N` and `--repeat 0`, free of timing noise).
        #[arg(long, requires = "side")]
        repeat: Option<u32>,
        /// The side `--repeat` runs.
        #[arg(long, value_enum)]
        side: Option<ParseSide>,
    },
    /// Per-hit cost: a loop firing a probe N times at a plain `nop` site and at a
    /// `nop; nop5` site, not attached and attached by usdtkit and by libbpf (count-only
    /// recorder).
    Hits {
        /// Hits per run.
        #[arg(long, default_value_t = 2_000_000)]
        iterations: u64,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// One side of the parse comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ParseSide {
    /// The baseline: the notes walked with `object`.
    Walk,
    /// usdtkit's parse.
    Usdtkit,
}

/// Parse the command line and run the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let ok = match cli.command {
        Command::Trace {
            target,
            pid,
            strings,
            json,
            command,
        } => {
            return trace::run(trace::TraceArgs {
                target,
                pid,
                strings,
                json,
                command,
            })
        }
        Command::List { json, paths } => list::run(&paths, json),
        Command::Decode { arch, args } => decode(arch, &args),
        Command::Bench {
            what:
                BenchCommand::Attach {
                    sites,
                    probes,
                    procs,
                    sparse,
                    rounds,
                    impls,
                    json,
                },
        } => bench::attach(
            usdtkit::bench::AttachBench {
                sites,
                probes,
                procs,
                sparse,
                impls,
                rounds,
            },
            json,
        ),
        Command::Bench {
            what: BenchCommand::Hits { iterations, json },
        } => bench::hits(iterations, json),
        Command::Bench {
            what:
                BenchCommand::Parse {
                    files,
                    rounds,
                    json,
                    only,
                    repeat,
                    side,
                },
        } => {
            let how = match (repeat, side) {
                (Some(n), Some(side)) => bench::ParseHow::Repeat(n, side),
                _ => bench::ParseHow::Compare { rounds, json },
            };
            bench::parse(&files, only.as_deref(), how)
        }
        Command::Check {
            corpus,
            profile,
            seed,
            impls,
            fixtures,
            probes,
            jobs,
            report,
            json,
            verbose,
        } => check::run(check::CheckArgs {
            corpus,
            profile,
            seed,
            impls,
            fixtures,
            probes,
            jobs: jobs.into(),
            report,
            json,
            verbose,
        }),
        Command::Gen {
            seed,
            profile,
            out,
            stats,
            json,
        } => gen::run(seed, profile, out, stats, json),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn decode(arch: Arch, strings: &[String]) -> bool {
    let mut ok = true;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for s in strings {
        for arg in decode_args(arch, s) {
            ok &= arg.decoded.is_ok();
            let line = serde_json::to_string(&arg).expect("args serialise");
            if writeln!(out, "{line}").is_err() {
                return false;
            }
        }
    }
    ok
}

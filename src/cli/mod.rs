//! Command-line interface. Exit status: 0 on success, 1 when any input could not be read or
//! decoded (the rest is still printed), 2 on usage errors (clap's own).

mod bench;
mod check;
mod gen;
mod list;
mod trace;
mod trace_out;

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
        /// Every file this process maps that has probes (with PATHS: only those).
        #[arg(long)]
        pid: Option<u32>,
        /// ELF executables or shared libraries.
        #[arg(required_unless_present = "pid")]
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
    /// Trace probes: attach the recorder and print every hit (or count them). TARGET is
    /// PATH[:PROVIDER[:NAME]] with `*` wildcards; PATH may be a library name (libc.so), and
    /// with --pid a path as that process sees it, `memfd:NAME`, or `*` (every file it maps
    /// that has probes). Hits that could not be delivered are counted and reported, never
    /// dropped silently.
    ///
    /// SIGINT, SIGTERM and SIGHUP end tracing: buffered hits are delivered, the summary is
    /// printed, and a command started here is stopped too (the signal is passed on; SIGKILL
    /// after 5 s). Exit status: the command's (128+N when signal N ended it); without a
    /// command 0 when tracing ends (signal, process exit, closed output); 1 on errors (the
    /// command is then killed before it runs); 2 on usage errors.
    Trace {
        /// What to trace (several targets: one recorder for all).
        #[arg(required = true)]
        targets: Vec<String>,
        /// Only this process; tracing ends when it exits (default: every process, or the
        /// command's).
        #[arg(long)]
        pid: Option<i32>,
        /// Arguments to read as C strings: `N[,N...]` for every probe, or
        /// `[PROVIDER:]NAME=N[,N...]` for some (repeatable).
        #[arg(long = "str", value_name = "SPEC")]
        strings: Vec<String>,
        /// Bytes kept of each string, with its NUL (1 to 4096; longer ones are marked cut).
        #[arg(long, value_name = "BYTES")]
        str_len: Option<u32>,
        /// Ring buffer size: a power of two, e.g. 64M (default 16M).
        #[arg(long, value_name = "SIZE", value_parser = trace::parse_size)]
        buffer_size: Option<u32>,
        /// One JSON object per hit, and a closing {"summary": ...} object.
        #[arg(long)]
        json: bool,
        /// Write hits to FILE instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Count hits per probe and process in BPF (nothing is lost at any rate) and print
        /// the counts at the end.
        #[arg(long)]
        count: bool,
        /// With --count: also print the counts every SECONDS.
        #[arg(long, value_name = "SECONDS", requires = "count")]
        interval: Option<f64>,
        /// A command to run and trace (attached before it runs; exits with its status, 128+N
        /// when a signal N ended it).
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
        /// Architecture whose grammar to use (x86_64, i386, ...; default: this machine's).
        #[arg(long)]
        arch: Option<Arch>,
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
    /// `usdtkit trace` on a loop firing one probe N times: hits delivered and lost per ring
    /// buffer size and in count mode, against the loop alone.
    Trace {
        /// Hits per run.
        #[arg(long, default_value_t = 2_000_000)]
        iterations: u64,
        /// JSON output.
        #[arg(long)]
        json: bool,
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
            targets,
            pid,
            strings,
            str_len,
            buffer_size,
            json,
            output,
            count,
            interval,
            command,
        } => {
            return trace::run(trace::TraceArgs {
                targets,
                pid,
                strings,
                str_len,
                buffer_size,
                json,
                output,
                count,
                interval,
                command,
            })
        }
        Command::List { json, pid, paths } => list::run(&paths, pid, json),
        Command::Decode { arch, args } => decode(arch.unwrap_or_else(host_arch), &args),
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
            what: BenchCommand::Trace { iterations, json },
        } => bench::trace(iterations, json),
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

/// The architecture this program runs on.
fn host_arch() -> Arch {
    match std::env::consts::ARCH {
        "x86" => Arch::I386,
        "aarch64" => Arch::Aarch64,
        "arm" => Arch::Arm,
        "riscv64" => Arch::Riscv64,
        "riscv32" => Arch::Riscv32,
        "s390x" => Arch::S390x,
        "powerpc64" => Arch::Powerpc64,
        "powerpc" => Arch::Powerpc,
        "loongarch64" => Arch::Loongarch64,
        "mips" | "mips64" => Arch::Mips,
        _ => Arch::X86_64,
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

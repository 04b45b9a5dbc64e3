//! The fixture generator: C, C++ and assembly programs with USDT probes whose every argument
//! value is known, built with the machine's compilers under many flag sets, described by
//! `manifest.json`.
//!
//! Harness API (feature `harness`): used by the `usdtkit` command and the tests; not
//! covered by semver.
//!
//! Deterministic: a seed gives the same sources and the same expected values. Expected values
//! come from what the generator passes to its probes, never from usdtkit's own decoder.

pub mod asm;
pub mod compile;
pub mod csrc;
pub mod manifest;
pub mod rng;
pub mod rust;
mod scale;
pub mod stats;
pub mod value;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use self::compile::Toolchain;
use self::csrc::{HitSpec, Target};
pub use self::manifest::{Emulator, Expected, Fixture, Hit, IntValue, Manifest};
use self::rng::Rng;
use crate::elf;
use crate::error::{Error, Result};

/// The fixture header every C fixture includes.
const FIXTURE_H: &str = include_str!("../../fixtures/c/usdtkit_fixture.h");
/// The assembler macro that writes a USDT note.
const NOTE_INC: &str = include_str!("../../fixtures/asm/usdt-note.inc");

/// Which corpus to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// A handful of fixtures covering every program kind: for CI.
    Quick,
    /// Every compiler, optimisation level, PIE/non-PIE, -m32, C++ and assembly.
    Default,
    /// `probes` probes of `sites` sites each, for benchmarks.
    Scale {
        /// Number of probe names.
        probes: usize,
        /// Sites per probe.
        sites: usize,
        /// One site per 4 KiB page instead of adjacent sites.
        sparse: bool,
    },
}

impl FromStr for Profile {
    type Err = String;

    /// `quick`, `default`, or `scale:PROBES:SITES[:sparse|:dense]`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "quick" => return Ok(Profile::Quick),
            "default" => return Ok(Profile::Default),
            _ => {}
        }
        let bad = || format!("unknown profile `{s}` (quick, default, scale:PROBES:SITES[:sparse])");
        let mut parts = s.split(':');
        if parts.next() != Some("scale") {
            return Err(bad());
        }
        let mut num = || {
            parts
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n > 0)
        };
        let (probes, sites) = (num().ok_or_else(bad)?, num().ok_or_else(bad)?);
        let sparse = match parts.next() {
            None | Some("dense") => false,
            Some("sparse") => true,
            Some(_) => return Err(bad()),
        };
        Ok(Profile::Scale {
            probes,
            sites,
            sparse,
        })
    }
}

impl Profile {
    /// The name used in the manifest and default directory.
    pub fn name(&self) -> String {
        match self {
            Profile::Quick => "quick".into(),
            Profile::Default => "default".into(),
            Profile::Scale {
                probes,
                sites,
                sparse,
            } => format!(
                "scale:{probes}:{sites}:{}",
                if *sparse { "sparse" } else { "dense" }
            ),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Which corpus.
    pub profile: Profile,
    /// Output directory.
    pub out: PathBuf,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// The default output directory: `target/usdtkit-fixtures/PROFILE-SEED` (under
/// `CARGO_TARGET_DIR` when set).
pub fn default_out_dir(profile: &Profile, seed: u64) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target
        .join("usdtkit-fixtures")
        .join(format!("{}-{seed}", profile.name().replace(':', "-")))
}

/// A cross compiler the default profile builds C fixtures with when it is installed.
struct Cross {
    /// Debian's compiler command.
    compiler: &'static str,
    /// Rust target triple, for the `cc` crate.
    target: &'static str,
    arch: crate::Arch,
    is_64: bool,
    /// The user-mode emulator that runs the fixture (Debian `qemu-user`).
    qemu: &'static str,
    /// Where the target's C library is (Debian's `libc6-dev-*-cross`), for the emulator.
    sysroot: &'static str,
    /// No C library for the target in Debian: a static freestanding build (see
    /// [`Toolchain::freestanding`]) without the shared library.
    freestanding: bool,
}

const CROSS: &[Cross] = &[
    Cross {
        compiler: "aarch64-linux-gnu-gcc",
        target: "aarch64-unknown-linux-gnu",
        arch: crate::Arch::Aarch64,
        is_64: true,
        qemu: "qemu-aarch64",
        sysroot: "/usr/aarch64-linux-gnu",
        freestanding: false,
    },
    Cross {
        compiler: "arm-linux-gnueabihf-gcc",
        target: "armv7-unknown-linux-gnueabihf",
        arch: crate::Arch::Arm,
        is_64: false,
        qemu: "qemu-arm",
        sysroot: "/usr/arm-linux-gnueabihf",
        freestanding: false,
    },
    Cross {
        compiler: "riscv64-linux-gnu-gcc",
        target: "riscv64gc-unknown-linux-gnu",
        arch: crate::Arch::Riscv64,
        is_64: true,
        qemu: "qemu-riscv64",
        sysroot: "/usr/riscv64-linux-gnu",
        freestanding: false,
    },
    Cross {
        compiler: "s390x-linux-gnu-gcc",
        target: "s390x-unknown-linux-gnu",
        arch: crate::Arch::S390x,
        is_64: true,
        qemu: "qemu-s390x",
        sysroot: "/usr/s390x-linux-gnu",
        freestanding: false,
    },
    Cross {
        compiler: "powerpc64le-linux-gnu-gcc",
        target: "powerpc64le-unknown-linux-gnu",
        arch: crate::Arch::Powerpc64,
        is_64: true,
        qemu: "qemu-ppc64le",
        sysroot: "/usr/powerpc64le-linux-gnu",
        freestanding: false,
    },
    Cross {
        compiler: "powerpc64-linux-gnu-gcc",
        target: "powerpc64-unknown-linux-gnu",
        arch: crate::Arch::Powerpc64,
        is_64: true,
        qemu: "qemu-ppc64",
        sysroot: "/usr/powerpc64-linux-gnu",
        freestanding: false,
    },
    Cross {
        compiler: "mips64el-linux-gnuabi64-gcc",
        target: "mips64el-unknown-linux-gnuabi64",
        arch: crate::Arch::Mips,
        is_64: true,
        qemu: "qemu-mips64el",
        sysroot: "/usr/mips64el-linux-gnuabi64",
        freestanding: false,
    },
    // Debian 12 has no LoongArch cross gcc or libc; clang 19 compiles for it.
    Cross {
        compiler: "clang-19",
        target: "loongarch64-unknown-linux-gnu",
        arch: crate::Arch::Loongarch64,
        is_64: true,
        qemu: "qemu-loongarch64",
        sysroot: "/",
        freestanding: true,
    },
];

/// A program kind a fixture is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// main.c + sem.c + lib.so (64-bit or 32-bit sources).
    C { is_64: bool },
    /// The same program for another architecture (index into [`CROSS`]); not runnable here.
    Cross(usize),
    /// structs.cc.
    Structs,
    /// forms.S + forms_main.c.
    Asm,
    /// A Rust program whose notes a crate writes, linked by lld or GNU ld.
    Rust(rust::Emitter, bool),
}

#[derive(Debug, Clone)]
struct Job {
    name: String,
    tc: Toolchain,
    kind: Kind,
}

fn job(kind: Kind, compiler: &str, opt: &str, pie: bool) -> Job {
    let (prefix, cpp, target) = match kind {
        Kind::C { is_64: true } => ("c", false, "x86_64-unknown-linux-gnu"),
        Kind::C { is_64: false } => ("c32", false, "i686-unknown-linux-gnu"),
        Kind::Structs => ("cxx", true, "x86_64-unknown-linux-gnu"),
        Kind::Asm => ("asm", false, "x86_64-unknown-linux-gnu"),
        Kind::Cross(i) => ("cross", false, CROSS[i].target),
        Kind::Rust(e, _) => (e.name(), false, compile::host()),
    };
    Job {
        name: format!(
            "{prefix}-{compiler}-O{opt}-{}",
            if pie { "pie" } else { "nopie" }
        ),
        tc: Toolchain {
            compiler: compiler.into(),
            cpp,
            target: target.into(),
            opt: opt.into(),
            pie,
            freestanding: false,
            linker: None,
        },
        kind,
    }
}

/// A Rust fixture: `rust-probe-lld`, `rust-usdt-bfd`...
fn rust_job(e: rust::Emitter, lld: bool) -> Job {
    let mut j = job(Kind::Rust(e, lld), "rustc", "3", true);
    j.name = format!("{}-{}", e.name(), if lld { "lld" } else { "bfd" });
    j.tc.linker = Some(if lld { "lld" } else { "bfd" }.into());
    j
}

/// The same job linked by lld (`-fuse-ld=lld`), laid out so that the semaphores share a
/// file page with the RELRO segment (see [`relro_layout`]).
fn lld(mut j: Job) -> Job {
    j.tc.linker = Some("lld".into());
    j.name.push_str("-lld");
    j
}

/// i386 with gcc goes through Debian's i686 cross compiler: gcc-multilib conflicts with every
/// other cross compiler in Debian, so the project uses no multilib. The fixture keeps the
/// name `c32-gcc-...`.
fn i386(mut j: Job) -> Job {
    j.tc.compiler = "i686-linux-gnu-gcc".into();
    j
}

fn jobs(profile: &Profile) -> Vec<Job> {
    let c64 = Kind::C { is_64: true };
    let c32 = Kind::C { is_64: false };
    match profile {
        Profile::Quick => vec![
            job(c64, "gcc", "0", true),
            job(c64, "gcc", "2", false),
            job(c64, "clang", "2", true),
            lld(job(c64, "clang", "2", true)),
            i386(job(c32, "gcc", "2", true)),
            job(Kind::Structs, "g++", "2", true),
            job(Kind::Asm, "gcc", "2", true),
            rust_job(rust::Emitter::Probe, true),
        ],
        Profile::Default => {
            let mut v = Vec::new();
            for cc in ["gcc", "clang"] {
                for opt in ["0", "1", "2", "3", "s"] {
                    for pie in [true, false] {
                        v.push(job(c64, cc, opt, pie));
                    }
                }
            }
            v.push(lld(job(c64, "clang", "2", true)));
            v.push(i386(job(c32, "gcc", "0", true)));
            v.push(i386(job(c32, "gcc", "2", true)));
            v.push(job(c32, "clang", "2", true));
            v.push(job(Kind::Structs, "g++", "0", true));
            v.push(job(Kind::Structs, "g++", "2", true));
            v.push(job(Kind::Structs, "clang++", "2", true));
            v.push(job(Kind::Asm, "gcc", "2", true));
            v.push(job(Kind::Asm, "gcc", "2", false));
            for e in [rust::Emitter::Probe, rust::Emitter::Usdt] {
                for lld in [false, true] {
                    v.push(rust_job(e, lld));
                }
            }
            for (i, c) in CROSS.iter().enumerate() {
                let mut j = job(Kind::Cross(i), c.compiler, "2", !c.freestanding);
                j.tc.freestanding = c.freestanding;
                j.name = format!("cross-{}-O2", c.target);
                v.push(j);
            }
            v
        }
        Profile::Scale { .. } => vec![job(Kind::Asm, "gcc", "0", true)],
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The sources of every program kind, written under `DIR/src`, with their expected hits.
struct Sources {
    c64: Vec<HitSpec>,
    c32: Vec<HitSpec>,
    cross: Vec<Vec<HitSpec>>,
    structs: Vec<HitSpec>,
    asm: Vec<HitSpec>,
    rust_probe: rust::Program,
    rust_usdt: rust::Program,
}

fn write_sources(dir: &Path, seed: u64) -> Result<Sources> {
    let src = dir.join("src");
    write(&src.join("usdtkit_fixture.h"), FIXTURE_H)?;
    write(&src.join("usdt-note.inc"), NOTE_INC)?;
    // sys/sdt.h is the same for every target; give -m32 builds (whose multiarch include
    // directory lacks it) a copy beside the sources.
    let sdt_dir = compile::find_sdt_header()
        .ok_or_else(|| Error::Invalid("sys/sdt.h not found: install systemtap-sdt-dev".into()))?;
    for h in ["sdt.h", "sdt-config.h"] {
        let from = sdt_dir.join("sys").join(h);
        if let Ok(text) = std::fs::read_to_string(&from) {
            write(&src.join("include/sys").join(h), &text)?;
        }
    }
    // One stream per program kind, so adding to one never changes another's values.
    let stream = |k: u64| Rng::new(seed ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut kinds = Vec::new();
    for (sub, is_64, k) in [("c64", true, 1), ("c32", false, 2)] {
        let arch = if is_64 {
            crate::Arch::X86_64
        } else {
            crate::Arch::I386
        };
        let p = csrc::generate(&mut stream(k), Target { arch, is_64 });
        write(&src.join(sub).join("main.c"), &p.main_c)?;
        write(&src.join(sub).join("sem.c"), &p.sem_c)?;
        write(&src.join(sub).join("lib.c"), &p.lib_c)?;
        kinds.push(p.hits);
    }
    let mut cross = Vec::new();
    for (i, c) in CROSS.iter().enumerate() {
        let p = csrc::generate(
            &mut stream(10 + i as u64),
            Target {
                arch: c.arch,
                is_64: c.is_64,
            },
        );
        let sub = src.join(format!("cross-{}", c.target));
        write(&sub.join("main.c"), &p.main_c)?;
        write(&sub.join("sem.c"), &p.sem_c)?;
        write(&sub.join("lib.c"), &p.lib_c)?;
        cross.push(p.hits);
    }
    let (structs_cc, structs) = csrc::structs_program(&mut stream(3));
    write(&src.join("structs.cc"), &structs_cc)?;
    let (forms_s, forms_main, asm) = asm::program(&mut stream(4));
    write(&src.join("forms.S"), &forms_s)?;
    write(&src.join("forms_main.c"), &forms_main)?;
    let c32 = kinds.pop().expect("two kinds");
    let c64 = kinds.pop().expect("two kinds");
    Ok(Sources {
        c64,
        c32,
        cross,
        structs,
        asm,
        rust_probe: rust::probe_program(&mut stream(5)),
        rust_usdt: rust::usdt_program(&mut stream(6)),
    })
}

/// Build one fixture into `DIR/NAME`.
fn build(dir: &Path, job: &Job, sources: &Sources) -> Result<Fixture> {
    let hits = match job.kind {
        Kind::C { is_64: true } => &sources.c64,
        Kind::C { is_64: false } => &sources.c32,
        Kind::Structs => &sources.structs,
        Kind::Asm => &sources.asm,
        Kind::Cross(i) => &sources.cross[i],
        Kind::Rust(e, lld) => {
            let p = match e {
                rust::Emitter::Probe => &sources.rust_probe,
                rust::Emitter::Usdt => &sources.rust_usdt,
            };
            return rust::build(dir, &job.name, e, lld, p);
        }
    };
    let out = dir.join(&job.name);
    std::fs::create_dir_all(&out).map_err(|source| Error::Io {
        path: out.clone(),
        source,
    })?;
    let src = dir.join("src");
    let includes = [src.clone(), src.join("include")];
    let exe_rel = PathBuf::from(&job.name).join("prog");
    let lib_rel = PathBuf::from(&job.name).join("libusdtfix.so");
    let rel = |p: &str| PathBuf::from("src").join(p);
    let (sources, libraries): (Vec<PathBuf>, Vec<PathBuf>) = match job.kind {
        Kind::C { .. } | Kind::Cross(_) => {
            let sub = match job.kind {
                Kind::C { is_64: true } => "c64".to_string(),
                Kind::C { is_64: false } => "c32".to_string(),
                Kind::Cross(i) => format!("cross-{}", CROSS[i].target),
                _ => unreachable!(),
            };
            let sub = sub.as_str();
            let sources = ["main.c", "sem.c", "lib.c"]
                .iter()
                .map(|f| rel(&format!("{sub}/{f}")))
                .collect();
            if job.tc.freestanding {
                // One static executable: the library's probes are linked in.
                let srcs = ["main.c", "sem.c", "lib.c"].map(|f| src.join(sub).join(f));
                job.tc
                    .link(&srcs, &dir.join(&exe_rel), false, &includes, &[])?;
                (sources, vec![])
            } else {
                let lib_src = [src.join(sub).join("lib.c")];
                let lib = |pad: &[String]| {
                    job.tc
                        .link(&lib_src, &dir.join(&lib_rel), true, &includes, pad)
                };
                let mut extra = vec![
                    format!("-L{}", out.display()),
                    "-lusdtfix".into(),
                    "-Wl,-rpath,$ORIGIN".into(),
                ];
                let srcs = [src.join(sub).join("main.c"), src.join(sub).join("sem.c")];
                let mut exe = |pad: &[String]| {
                    extra.truncate(3);
                    extra.extend_from_slice(pad);
                    job.tc
                        .link(&srcs, &dir.join(&exe_rel), false, &includes, &extra)
                };
                if job.tc.linker.as_deref() == Some("lld") {
                    relro_layout(&dir.join(&lib_rel), lib)?;
                    relro_layout(&dir.join(&exe_rel), exe)?;
                } else {
                    lib(&[])?;
                    exe(&[])?;
                }
                (sources, vec![lib_rel.clone()])
            }
        }
        Kind::Structs => {
            job.tc.link(
                &[src.join("structs.cc")],
                &dir.join(&exe_rel),
                false,
                &includes,
                &[],
            )?;
            (vec![rel("structs.cc")], vec![])
        }
        Kind::Asm => {
            let srcs = [src.join("forms.S"), src.join("forms_main.c")];
            job.tc
                .link(&srcs, &dir.join(&exe_rel), false, &includes, &[])?;
            (vec![rel("forms.S"), rel("forms_main.c")], vec![])
        }
        Kind::Rust(..) => unreachable!("built above"),
    };
    let arch = match job.kind {
        Kind::Cross(i) => CROSS[i].arch.name(),
        _ if job.tc.target.starts_with("i686") => "i386".to_string(),
        _ => "x86_64".to_string(),
    };
    Ok(Fixture {
        name: job.name.clone(),
        binary: exe_rel.clone(),
        libraries: libraries.clone(),
        sources,
        compiler: job.tc.compiler.clone(),
        compiler_version: job.tc.version()?,
        flags: job.tc.flags(),
        emitter: None,
        linker: job.tc.linker.clone(),
        arch,
        args: vec![],
        runnable: !matches!(job.kind, Kind::Cross(_)),
        emulator: match job.kind {
            Kind::Cross(i) => Some(Emulator {
                command: CROSS[i].qemu.to_string(),
                sysroot: PathBuf::from(CROSS[i].sysroot),
            }),
            _ => None,
        },
        hits: hits
            .iter()
            .cloned()
            .map(|h| h.into_hit(&exe_rel, libraries.first().unwrap_or(&exe_rel)))
            .collect(),
    })
}

/// Build `out` with `build(extra)` so that its semaphores share a file page with the RELRO
/// segment, as lld lays out small programs (its data segment starts in the file right where
/// RELRO ends, on the same page): built once, and if the semaphores landed on a page of
/// their own, again with `-DUSDTKIT_RELRO_PAD=N` (N bytes in RELRO) sized to move RELRO's
/// end to the start of a page. An error when the layout still is not
/// there.
fn relro_layout(out: &Path, mut build: impl FnMut(&[String]) -> Result<()>) -> Result<()> {
    let aliased = |p: &Path| -> Result<(usize, Option<u64>)> {
        let m = crate::MappedFile::open(p)?;
        let u = m.usdt()?;
        let n = u.semaphore_aliases().len();
        // Where the data segment holding the first semaphore starts in the file.
        let start = u
            .sites()
            .iter()
            .find_map(|s| s.semaphore)
            .and_then(|a| u.elf().segment_for(a))
            .map(|s| s.offset);
        Ok((n, start))
    };
    // Grow RELRO until the data segment starts 64 bytes into a page: each round adds what
    // the last one missed by (alignment moves it a little).
    let mut bytes = 0;
    let mut start = None;
    for _ in 0..4 {
        let pad: Vec<String> = if bytes == 0 {
            vec![]
        } else {
            vec![format!("-DUSDTKIT_RELRO_PAD={bytes}")]
        };
        build(&pad)?;
        let (n, s) = aliased(out)?;
        if n > 0 {
            return Ok(());
        }
        let s =
            s.ok_or_else(|| Error::Invalid(format!("{}: no semaphore to lay out", out.display())))?;
        start = Some(s);
        bytes += ((elf::LAYOUT_PAGE + 64 - s % elf::LAYOUT_PAGE) % elf::LAYOUT_PAGE).max(8);
    }
    Err(Error::Invalid(format!(
        "{}: lld did not put the semaphores on RELRO's last page (data segment at file offset {:#x} with a {bytes}-byte pad)",
        out.display(),
        start.unwrap_or(0)
    )))
}

/// Whether `tc` can build and link a trivial program here; the reason when not.
fn preflight(dir: &Path, tc: &Toolchain) -> std::result::Result<(), String> {
    if tc.compiler == "rustc" {
        return match std::process::Command::new("cargo")
            .arg("--version")
            .output()
        {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Err(format!("cargo: {e}")),
        };
    }
    let probe = dir.join("preflight");
    let name = format!("{}-{}", tc.compiler, tc.target);
    let ext = if tc.cpp { "cc" } else { "c" };
    let src = probe.join(format!("{name}.{ext}"));
    write(&src, "int main(void) { return 0; }\n").map_err(|e| e.to_string())?;
    tc.link(
        &[src],
        &probe.join(&name),
        false,
        std::slice::from_ref(&probe),
        &[],
    )
    .map_err(|e| e.to_string())
}

/// Generate and build the corpus; returns (and writes) the manifest.
pub fn generate(opts: &GenOptions) -> Result<Manifest> {
    let dir = &opts.out;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    if let Profile::Scale {
        probes,
        sites,
        sparse,
    } = opts.profile
    {
        let m = scale::generate(dir, opts.seed, probes, sites, sparse)?;
        m.save(dir)?;
        return Ok(m);
    }
    let sources = write_sources(dir, opts.seed)?;
    let mut todo = Vec::new();
    let mut skipped: Vec<(Toolchain, String)> = Vec::new();
    for j in jobs(&opts.profile) {
        let known = skipped
            .iter()
            .find(|(tc, _)| tc.compiler == j.tc.compiler && tc.target == j.tc.target);
        if let Some((_, why)) = known {
            eprintln!("usdtkit gen: skipping {}: {why}", j.name);
            continue;
        }
        if let Err(why) = preflight(dir, &j.tc) {
            eprintln!(
                "usdtkit gen: skipping {}: {} cannot build for {}: {why}",
                j.name, j.tc.compiler, j.tc.target
            );
            skipped.push((j.tc.clone(), why));
            continue;
        }
        todo.push(j);
    }
    let _ = std::fs::remove_dir_all(dir.join("preflight"));
    let bar = if opts.progress {
        ProgressBar::new(todo.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("building fixtures {bar:30} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Fixture>)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(j) = todo.get(i) else { break };
                bar.set_message(j.name.clone());
                let r = build(dir, j, &sources);
                results.lock().expect("no panics while locked").push((i, r));
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let mut results = results.into_inner().expect("workers done");
    results.sort_by_key(|r| r.0);
    let fixtures = results
        .into_iter()
        .map(|r| r.1)
        .collect::<Result<Vec<_>>>()?;
    let m = Manifest {
        version: manifest::MANIFEST_VERSION,
        seed: opts.seed,
        profile: opts.profile.name(),
        fixtures,
    };
    m.save(dir)?;
    Ok(m)
}

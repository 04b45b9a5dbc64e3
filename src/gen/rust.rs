//! Rust fixtures: programs whose notes are written by the two crates Rust programs use, the
//! `probe` crate (`probe!`, and `probe_lazy!` with one semaphore per call site) and
//! oxidecomputer's `usdt` crate (a D provider, one semaphore per probe, every probe guarded
//! by it), each linked by GNU ld and by lld (rustc's default on x86-64 Linux since 1.90).
//! lld builds are laid out so that the semaphores share a file page with RELRO (see
//! `relro_layout`). Built with cargo from `fixtures/rust/*/Cargo.toml.in` (written out as
//! `Cargo.toml`: one in the source tree would keep the directory out of the package) and
//! the pinned `Cargo.lock`; the generator writes `src/main.rs`.
//!
//! What a tracer must read: the `probe` crate passes every argument as `x as isize` in a
//! register (`-8@%reg`); the `usdt` crate passes each argument at its declared D type in a
//! fixed register (`-1@%dil`...), pointer-sized integers as `8@` (unsigned), and a
//! `uint32_t *` as the 8 bytes it points at (`8@(%r8)`).

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::csrc::{HitSpec, Object};
use super::manifest::{Expected, Fixture};
use super::rng::Rng;
use super::value::{CType, Value, INTS};
use crate::error::{Error, Result};

const PROBE_TOML: &str = include_str!("../../fixtures/rust/probe/Cargo.toml.in");
const PROBE_LOCK: &str = include_str!("../../fixtures/rust/probe/Cargo.lock");
const USDT_TOML: &str = include_str!("../../fixtures/rust/usdt/Cargo.toml.in");
const USDT_LOCK: &str = include_str!("../../fixtures/rust/usdt/Cargo.lock");
const USDT_D: &str = include_str!("../../fixtures/rust/usdt/provider.d");

/// The provider of every Rust fixture's probes.
pub const PROVIDER: &str = "rustfix";

/// Which crate writes the notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emitter {
    /// The `probe` crate.
    Probe,
    /// oxidecomputer's `usdt` crate.
    Usdt,
}

impl Emitter {
    /// Its name in fixture names and the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Emitter::Probe => "rust-probe",
            Emitter::Usdt => "rust-usdt",
        }
    }
}

/// A generated Rust program: `main.rs` with a placeholder for the RELRO pad (in bytes), and
/// its hits.
#[derive(Debug, Clone)]
pub struct Program {
    main_rs: String,
    /// The hits, in firing order.
    pub hits: Vec<HitSpec>,
}

const PAD_MARK: &str = "// usdtkit: RELRO pad\n";

impl Program {
    fn source(&self, pad: usize) -> String {
        let pad = if pad == 0 {
            String::new()
        } else {
            format!(
                "// Bytes in RELRO (write-protected after relocation), as many as the generator\n\
                 // needs for the data segment, and the semaphores, to start on RELRO's last\n\
                 // file page.\n\
                 #[used]\n#[link_section = \".data.rel.ro.usdtkit_pad\"]\n\
                 static RELRO_PAD: [u8; {pad}] = [1; {pad}];\n"
            )
        };
        let keep = if pad.is_empty() {
            ""
        } else {
            "    std::hint::black_box(&RELRO_PAD);\n"
        };
        self.main_rs
            .replace(PAD_MARK, &pad)
            .replace("    // usdtkit: keep pad\n", keep)
    }
}

/// Collects a program's statements and hits.
struct Emit {
    body: String,
    hits: Vec<HitSpec>,
    semaphore: bool,
}

impl Emit {
    fn hit(&mut self, name: &str, args: Vec<Expected>, semaphore: bool) -> usize {
        self.hits.push(HitSpec {
            provider: PROVIDER.into(),
            name: name.into(),
            object: Object::Exe,
            semaphore: semaphore || self.semaphore,
            args,
        });
        self.hits.len() - 1
    }
}

fn rust_type(t: CType) -> &'static str {
    match t {
        CType::I8 => "i8",
        CType::U8 => "u8",
        CType::I16 => "i16",
        CType::U16 => "u16",
        CType::I32 => "i32",
        CType::U32 => "u32",
        CType::I64 => "i64",
        CType::U64 => "u64",
        CType::Bool => "bool",
        _ => "usize",
    }
}

fn literal(v: i128, t: CType) -> String {
    match t {
        CType::Bool => (v != 0).to_string(),
        _ => format!("{v}{}", rust_type(t)),
    }
}

/// `x as isize` of a value, as the `probe` crate passes it: the note says `-8@`.
fn as_isize(v: i128, t: CType) -> Expected {
    let bits = match t {
        CType::U64 => v as u64 as i64,
        _ => v as i64,
    };
    Expected::Int {
        value: super::IntValue::from_i128(bits.into()),
        ctype: rust_type(t).into(),
    }
}

const WAIT: &str = "    if std::env::args().nth(1).as_deref() == Some(\"--wait\") {\n\
                    \x20       let mut b = [0u8; 1];\n\
                    \x20       let _ = std::io::Read::read(&mut std::io::stdin(), &mut b);\n    }\n";

/// The `probe` crate's program.
pub fn probe_program(rng: &mut Rng) -> Program {
    let mut e = Emit {
        body: String::new(),
        hits: Vec::new(),
        semaphore: false,
    };
    // Every integer type, at one site.
    let vals: Vec<(i128, CType)> = INTS
        .iter()
        .map(|&t| match Value::random(rng, t) {
            Value::Int(_, v) => (v, t),
            _ => unreachable!(),
        })
        .collect();
    for (i, (v, t)) in vals.iter().enumerate() {
        let _ = writeln!(
            e.body,
            "    let v{i}: {} = black_box({});",
            rust_type(*t),
            literal(*v, *t)
        );
    }
    let names: Vec<String> = (0..vals.len()).map(|i| format!("v{i}")).collect();
    let _ = writeln!(
        e.body,
        "    probe!({PROVIDER}, ints, {});",
        names.join(", ")
    );
    e.hit(
        "ints",
        vals.iter().map(|&(v, t)| as_isize(v, t)).collect(),
        false,
    );
    // A bool, a pointer (printed at run time), a constant.
    let b = rng.below(2) as i128;
    let k = -(1 + rng.below(30000) as i128);
    let idx = e.hits.len();
    let _ = writeln!(
        e.body,
        "    let flag = black_box({});\n    let table = black_box([1u32, 2, 3]);\n    \
         println!(\"usdtkit-rt {idx} 1 {{}}\", table.as_ptr() as usize);\n    \
         probe!({PROVIDER}, misc, flag, table.as_ptr(), {k}i16);",
        b != 0
    );
    e.hit(
        "misc",
        vec![
            as_isize(b, CType::Bool),
            Expected::Runtime {
                ctype: "*const u32".into(),
            },
            as_isize(k, CType::I16),
        ],
        false,
    );
    // One probe name at three call sites (two functions kept out of line, and main).
    let base = rng.next_u64() as i64 >> 8;
    for round in 0..2i64 {
        for (site, add) in [("site_a", 0i64), ("site_b", 1000)] {
            let _ = writeln!(e.body, "    {site}(black_box({}));", base + round);
            e.hit(
                "multi",
                vec![as_isize((base + round + add).into(), CType::I64)],
                false,
            );
        }
    }
    let _ = writeln!(
        e.body,
        "    probe!({PROVIDER}, multi, black_box({base}i64 - 1));"
    );
    e.hit(
        "multi",
        vec![as_isize((base - 1).into(), CType::I64)],
        false,
    );
    // No arguments; twelve arguments (the most sys/sdt.h writes).
    let _ = writeln!(e.body, "    probe!({PROVIDER}, empty);");
    e.hit("empty", vec![], false);
    let twelve: Vec<i128> = (0..12)
        .map(|_| match Value::random(rng, CType::I32) {
            Value::Int(_, v) => v,
            _ => unreachable!(),
        })
        .collect();
    let _ = writeln!(
        e.body,
        "    probe!({PROVIDER}, twelve, {});",
        twelve
            .iter()
            .map(|v| format!("black_box({v}i32)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    e.hit(
        "twelve",
        twelve.iter().map(|&v| as_isize(v, CType::I32)).collect(),
        false,
    );
    // Semaphore-guarded sites: one semaphore per call site, two sites of one probe.
    let l1 = match Value::random(rng, CType::I64) {
        Value::Int(_, v) => v,
        _ => unreachable!(),
    };
    let l2 = rng.below(250) as i128;
    let _ = writeln!(
        e.body,
        "    let on1 = probe_lazy!({PROVIDER}, lazy, black_box({l1}i64), black_box({l2}u8));\n    \
         let on2 = probe_lazy!({PROVIDER}, lazy, black_box({l2}u8));\n    \
         let on3 = probe_lazy!({PROVIDER}, lazy_other, black_box(-1i8));\n    \
         black_box((on1, on2, on3));"
    );
    e.hit(
        "lazy",
        vec![as_isize(l1, CType::I64), as_isize(l2, CType::U8)],
        true,
    );
    e.hit("lazy", vec![as_isize(l2, CType::U8)], true);
    e.hit("lazy_other", vec![as_isize(-1, CType::I8)], true);
    let main_rs = format!(
        "// Generated by `usdtkit gen`: do not edit.\n\
         use probe::{{probe, probe_lazy}};\nuse std::hint::black_box;\n\n{PAD_MARK}\n\
         #[inline(never)]\nfn site_a(x: i64) {{\n    probe!({PROVIDER}, multi, x);\n}}\n\n\
         #[inline(never)]\nfn site_b(x: i64) {{\n    probe!({PROVIDER}, multi, x + 1000);\n}}\n\n\
         fn main() {{\n    // usdtkit: keep pad\n{WAIT}{}}}\n",
        e.body
    );
    Program {
        main_rs,
        hits: e.hits,
    }
}

/// The `usdt` crate's program (`fixtures/rust/usdt/provider.d`).
pub fn usdt_program(rng: &mut Rng) -> Program {
    let mut e = Emit {
        body: String::new(),
        hits: Vec::new(),
        // The crate evaluates a probe's arguments and fires it only when its semaphore is
        // raised.
        semaphore: true,
    };
    let int = |rng: &mut Rng, t: CType| match Value::random(rng, t) {
        Value::Int(_, v) => v,
        _ => unreachable!(),
    };
    let exp = |v: i128, t: CType| Expected::Int {
        value: super::IntValue::from_i128(v),
        ctype: rust_type(t).into(),
    };
    // ints(int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t): each at its own width.
    let six = &INTS[..6];
    let vals: Vec<(i128, CType)> = six.iter().map(|&t| (int(rng, t), t)).collect();
    let _ = writeln!(
        e.body,
        "    {PROVIDER}::ints!(|| ({}));",
        vals.iter()
            .map(|&(v, t)| format!("black_box({})", literal(v, t)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    e.hit("ints", vals.iter().map(|&(v, t)| exp(v, t)).collect(), true);
    // wide(int64_t, uint64_t, intptr_t, uintptr_t, uint32_t *): pointer-sized integers are
    // written `8@` (unsigned), the pointer as the 8 bytes it points at.
    let (a, b) = (int(rng, CType::I64), int(rng, CType::U64));
    let ip = -(1 + rng.below(1 << 40) as i128);
    let up = rng.next_u64() as i128;
    let (lo, hi) = (rng.next_u64() as u32, rng.next_u64() as u32);
    let _ = writeln!(
        e.body,
        "    let pair = black_box([{lo}u32, {hi}u32]);\n    \
         {PROVIDER}::wide!(|| (black_box({a}i64), black_box({b}u64), black_box({ip}isize), \
         black_box({up}usize), pair.as_ptr()));"
    );
    e.hit(
        "wide",
        vec![
            exp(a, CType::I64),
            exp(b, CType::U64),
            exp(ip as u64 as i128, CType::U64),
            exp(up, CType::U64),
            exp(i128::from(u64::from(lo) | u64::from(hi) << 32), CType::U64),
        ],
        true,
    );
    // hit(uint64_t) at three call sites sharing the probe's one semaphore.
    let base = rng.next_u64() >> 4;
    for round in 0..2u64 {
        for (site, add) in [("site_a", 0u64), ("site_b", 1000)] {
            let _ = writeln!(e.body, "    {site}(black_box({}));", base + round);
            e.hit(
                "hit",
                vec![exp((base + round + add).into(), CType::U64)],
                true,
            );
        }
    }
    let _ = writeln!(e.body, "    {PROVIDER}::hit!(|| black_box({base}u64 - 1));");
    e.hit("hit", vec![exp((base - 1).into(), CType::U64)], true);
    let _ = writeln!(e.body, "    {PROVIDER}::empty!(|| ());");
    e.hit("empty", vec![], true);
    let d = int(rng, CType::I32);
    let _ = writeln!(e.body, "    {PROVIDER}::with__dash!(|| black_box({d}i32));");
    e.hit("with-dash", vec![exp(d, CType::I32)], true);
    let main_rs = format!(
        "// Generated by `usdtkit gen`: do not edit.\n\
         use std::hint::black_box;\n\nusdt::dtrace_provider!(\"provider.d\");\n\n{PAD_MARK}\n\
         #[inline(never)]\nfn site_a(x: u64) {{\n    {PROVIDER}::hit!(|| x);\n}}\n\n\
         #[inline(never)]\nfn site_b(x: u64) {{\n    {PROVIDER}::hit!(|| x + 1000);\n}}\n\n\
         fn main() {{\n    // usdtkit: keep pad\n    usdt::register_probes().expect(\"usdt probes\");\n\
         {WAIT}{}}}\n",
        e.body
    );
    Program {
        main_rs,
        hits: e.hits,
    }
}

/// One cargo build at a time: the builds share a target directory and write the same
/// output path.
static CARGO: Mutex<()> = Mutex::new(());

/// Where the Rust fixtures' dependencies are built once for every corpus:
/// `$USDTKIT_RUST_TARGET`, else `target/usdtkit-rust` (under `CARGO_TARGET_DIR` when set).
fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("USDTKIT_RUST_TARGET") {
        return d.into();
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("usdtkit-rust")
}

/// `rustc --version`, or why it cannot run.
fn rustc_version() -> Result<String> {
    let out = Command::new("rustc")
        .arg("--version")
        .output()
        .map_err(|e| Error::Command {
            command: "rustc --version".into(),
            detail: e.to_string(),
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether lld linked `bin`: lld signs `.comment` with `Linker: [vendor ]LLD version`; GNU
/// ld writes nothing there.
fn linked_by_lld(bin: &Path) -> bool {
    let Ok(b) = std::fs::read(bin) else {
        return false;
    };
    let Some(i) = memchr::memmem::find(&b, b"Linker: ") else {
        return false;
    };
    let line = &b[i..];
    let end = memchr::memchr(0, line).unwrap_or(line.len());
    memchr::memmem::find(&line[..end], b"LLD").is_some()
}

/// Build the fixture `name` (in `DIR/name`): `program` written by `emitter`, linked by lld
/// (`lld`) or GNU ld.
pub fn build(
    dir: &Path,
    name: &str,
    emitter: Emitter,
    lld: bool,
    program: &Program,
) -> Result<Fixture> {
    let project = dir.join(name).join("build");
    let (toml, lock) = match emitter {
        Emitter::Probe => (PROBE_TOML, PROBE_LOCK),
        Emitter::Usdt => (USDT_TOML, USDT_LOCK),
    };
    super::write(&project.join("Cargo.toml"), toml)?;
    super::write(&project.join("Cargo.lock"), lock)?;
    if emitter == Emitter::Usdt {
        super::write(&project.join("provider.d"), USDT_D)?;
    }
    let main_rs = project.join("src/main.rs");
    let exe_rel = PathBuf::from(name).join("prog");
    let exe = dir.join(&exe_rel);
    let target = target_dir();
    // GNU ld: rustc's documented opt-out of its default lld.
    let flags: Vec<&str> = if lld {
        vec![]
    } else {
        vec!["-C", "linker-features=-lld"]
    };
    let mut build_with = |pad: &[String]| -> Result<()> {
        let n = pad
            .first()
            .and_then(|p| p.strip_prefix("-DUSDTKIT_RELRO_PAD="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        super::write(&main_rs, &program.source(n))?;
        let _one = CARGO.lock().unwrap_or_else(|p| p.into_inner());
        let mut cmd = Command::new("cargo");
        cmd.args(["rustc", "--release", "--locked", "--quiet", "--bin", "prog"])
            .arg("--manifest-path")
            .arg(project.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .arg("--")
            .args(&flags)
            .env_remove("RUSTFLAGS");
        let out = cmd.output().map_err(|e| Error::Command {
            command: "cargo rustc".into(),
            detail: e.to_string(),
        })?;
        if !out.status.success() {
            return Err(Error::Command {
                command: format!(
                    "cargo rustc --manifest-path {}",
                    project.join("Cargo.toml").display()
                ),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        std::fs::copy(target.join("release/prog"), &exe).map_err(|source| Error::Io {
            path: exe.clone(),
            source,
        })?;
        Ok(())
    };
    if lld {
        super::relro_layout(&exe, &mut build_with)?;
        if !linked_by_lld(&exe) {
            return Err(Error::Invalid(format!(
                "{}: this rustc did not link with lld (rustc links with lld by default on x86-64 Linux since 1.90)",
                exe.display()
            )));
        }
    } else {
        build_with(&[])?;
    }
    let rel = |p: &str| PathBuf::from(name).join("build").join(p);
    let mut sources = vec![rel("src/main.rs")];
    if emitter == Emitter::Usdt {
        sources.push(rel("provider.d"));
    }
    let mut flags = vec!["-O".to_string()];
    flags.extend(if lld {
        vec![]
    } else {
        vec!["-C linker-features=-lld".to_string()]
    });
    Ok(Fixture {
        name: name.into(),
        binary: exe_rel.clone(),
        libraries: vec![],
        sources,
        compiler: "rustc".into(),
        compiler_version: rustc_version()?,
        flags,
        emitter: Some(emitter.name().into()),
        linker: Some(if lld { "lld" } else { "bfd" }.into()),
        arch: crate::Arch::host().map_or_else(|| "unknown".into(), |a| a.name()),
        args: vec![],
        runnable: true,
        emulator: None,
        hits: program
            .hits
            .iter()
            .cloned()
            .map(|h| h.into_hit(&exe_rel, &exe_rel))
            .collect(),
    })
}

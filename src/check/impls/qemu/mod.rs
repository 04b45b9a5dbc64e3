//! Foreign-architecture fixtures under user-mode emulation, with gdb-multiarch attached to
//! qemu's gdb stub (`fixtures/peers/qemu_connect.py`). Two implementations run this way:
//!
//! - `gdb-qemu`: gdb's own USDT support (`fixtures/peers/gdb_usdt.py`) on the emulated
//!   program, as the `gdb` implementation does natively.
//! - `usdtkit-qemu`: usdtkit's decoding of a foreign-architecture fixture, checked on the
//!   running program. The fixture runs under user-mode emulation (`qemu-ARCH -L SYSROOT -g
//!   PORT`); gdb-multiarch stops it at every probe site and evaluates each argument as
//!   usdtkit decoded it (registers and memory of the emulated process), through
//!   `fixtures/peers/qemu_eval.py`. The values are compared with the manifest like any other
//!   implementation's: a decoder that names the wrong register or offset reads a wrong value.
//!
//! What is evaluated mirrors what usdtkit's BPF side can read: arguments it refuses there
//! (wider than 8 bytes, an 8-byte value in a 4-byte register, unresolved symbols) are refused
//! here with the same reason, and floating-point registers, which a uprobe cannot read, are
//! evaluated anyway (this check is about the decoder).

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use object::{Object, ObjectKind, ObjectSection};
use serde_json::{json, Value};

use super::{version_of, Implementation};
use crate::arg::ArgSpec;
use crate::check::compare::{ObservedHit, Run};
use crate::check::run::{output_within, Peer, Scratch};
use crate::check::select::{Granularity, Selection};
use crate::elf::ByteOrder;
use crate::error::{Error, Result};
use crate::gen::Fixture;
use crate::probe::MappedFile;

mod recipe;

use self::recipe::{observed, raw_layout, recipe};

const EVAL: &str = include_str!("../../../../fixtures/peers/qemu_eval.py");
const CONNECT: &str = include_str!("../../../../fixtures/peers/qemu_connect.py");

/// usdtkit's decoder, evaluated under qemu-user through gdb-multiarch.
#[derive(Debug, Clone, Copy)]
pub struct UsdtkitQemu;

/// One site of the plan: what a hit means.
struct PlanSite {
    provider: String,
    name: String,
    pc: u64,
    specs: Vec<Option<ArgSpec>>,
}

impl Implementation for UsdtkitQemu {
    fn name(&self) -> String {
        "usdtkit-qemu".into()
    }

    fn detect(&self) -> std::result::Result<String, String> {
        let gdb = version_of("gdb-multiarch", "--version")?;
        let qemu = version_of("qemu-aarch64", "--version")?;
        Ok(format!(
            "{} with {}",
            env!("CARGO_PKG_VERSION"),
            short(&qemu, &gdb)
        ))
    }

    fn runs(&self, fx: &Fixture) -> bool {
        fx.emulator.is_some()
    }

    // Reads every probe of the fixture in one emulated run; a whole refusal here is the
    // emulator's or gdb's limit, not a probe's.
    fn granularity(&self) -> Granularity {
        Granularity::Fixture
    }

    fn run(&self, dir: &Path, fx: &Fixture, _sel: &Selection, limit: Duration) -> Result<Run> {
        // Without gdb for the architecture, the script speaks the remote protocol itself:
        // for a static non-PIE executable of an architecture whose stub layout is known.
        let raw = match gdb_lacks(fx) {
            None => None,
            Some(refusal) => match raw_layout(fx.arch.as_str()) {
                Some(layout)
                    if is_static_exec(&dir.join(&fx.binary)) && fx.libraries.is_empty() =>
                {
                    Some(layout)
                }
                _ => return Ok(refusal),
            },
        };
        let mut objects = Vec::new();
        let mut sites = Vec::new();
        let mut plan_sites = Vec::new();
        let mut byte_order = ByteOrder::Little;
        let mut word_bits = 64;
        for (o, rel) in std::iter::once(&fx.binary).chain(&fx.libraries).enumerate() {
            let path = canonical(&dir.join(rel))?;
            let file = MappedFile::open(&path)?;
            let usdt = file.usdt()?;
            let text = object::File::parse(file.bytes())
                .ok()
                .and_then(|f| f.section_by_name(".text").map(|s| s.address()))
                .ok_or_else(|| Error::Invalid(format!("{}: no .text section", path.display())))?;
            if o == 0 {
                byte_order = usdt.elf().byte_order;
                word_bits = if usdt.elf().is_64 { 64 } else { 32 };
            }
            objects.push(json!({ "path": path, "text": text }));
            for s in usdt.sites() {
                let args: Vec<Value> = s
                    .args
                    .iter()
                    .map(|a| match &a.decoded {
                        Ok(spec) => recipe(usdt.arch(), word_bits, spec),
                        Err(e) => json!({ "error": e.to_string() }),
                    })
                    .collect();
                sites.push(json!({
                    "object": o,
                    "pc": s.pc,
                    "semaphore": s.semaphore,
                    "args": args,
                }));
                plan_sites.push(PlanSite {
                    provider: s.provider.to_string(),
                    name: s.name.to_string(),
                    pc: s.pc,
                    specs: s.args.iter().map(|a| a.decoded.clone().ok()).collect(),
                });
            }
        }
        let plan = json!({
            "byte_order": if byte_order == ByteOrder::Little { "little" } else { "big" },
            "word_bits": word_bits,
            "objects": objects,
            "sites": sites,
            "raw_registers": raw.as_ref().map(|(regs, _)| regs),
            "raw_pc": raw.as_ref().map(|(_, pc)| pc),
        });
        let plan_path = Scratch::new("plan.json", plan.to_string().as_bytes())?;
        let session = debug_emulated(
            dir,
            fx,
            limit,
            EVAL,
            &[("USDTKIT_QEMU_PLAN", plan_path.0.as_os_str())],
            raw.is_some(),
        )?;
        let (stdout, stderr) = (session.gdb_stdout, session.gdb_stderr);
        let mut hits = Vec::new();
        let mut exit = None;
        for line in stdout.lines() {
            if let Some(j) = line.strip_prefix("USDTKIT-QEMU-EXIT ") {
                exit = serde_json::from_str::<Value>(j)
                    .ok()
                    .map(|v| v["code"].clone());
                continue;
            }
            let Some(j) = line.strip_prefix("USDTKIT-QEMU ") else {
                continue;
            };
            let v: Value = serde_json::from_str(j)
                .map_err(|e| Error::Invalid(format!("qemu_eval.py output: {e}")))?;
            let site = v["site"]
                .as_u64()
                .and_then(|i| plan_sites.get(i as usize))
                .ok_or_else(|| Error::Invalid(format!("qemu_eval.py: unknown site in {j}")))?;
            let values = v["args"].as_array().cloned().unwrap_or_default();
            hits.push(ObservedHit {
                provider: site.provider.clone(),
                name: site.name.clone(),
                pc: Some(site.pc),
                args: values
                    .iter()
                    .enumerate()
                    .map(|(i, a)| observed(site.specs.get(i).and_then(Option::as_ref), a))
                    .collect(),
            });
        }
        match exit {
            Some(Value::Number(n)) if n.as_i64() == Some(0) => {}
            other => {
                let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
                return Err(Error::Invalid(format!(
                    "{} under emulation: exit {:?}; gdb said: {}",
                    fx.name,
                    other,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
        }
        Ok(Run {
            hits,
            stdout: session.program_stdout,
            ..Run::default()
        })
    }
}

/// gdb's own USDT support, on the emulated program.
#[derive(Debug, Clone, Copy)]
pub struct GdbQemu;

impl Implementation for GdbQemu {
    fn name(&self) -> String {
        "gdb-qemu".into()
    }

    fn detect(&self) -> std::result::Result<String, String> {
        let gdb = version_of("gdb-multiarch", "--version")?;
        let qemu = version_of("qemu-aarch64", "--version")?;
        Ok(short(&qemu, &gdb))
    }

    fn runs(&self, fx: &Fixture) -> bool {
        fx.emulator.is_some()
    }

    fn granularity(&self) -> Granularity {
        Granularity::Fixture
    }

    fn run(&self, dir: &Path, fx: &Fixture, sel: &Selection, limit: Duration) -> Result<Run> {
        if let Some(run) = gdb_lacks(fx) {
            return Ok(run);
        }
        let keys: Vec<String> = sel.probes.iter().map(|w| w.probe.key()).collect();
        let probes = serde_json::to_string(&keys).expect("json");
        let session = debug_emulated(
            dir,
            fx,
            limit,
            super::gdb::SCRIPT,
            &[
                ("USDTKIT_PROBES", OsStr::new(&probes)),
                ("USDTKIT_GDB_START", OsStr::new("continue")),
            ],
            false,
        )?;
        let mut run = super::gdb::parse_run(&keys, session.gdb_stdout, &session.gdb_stderr)?;
        run.stdout = session.program_stdout;
        Ok(run)
    }
}

/// A run refusing every probe of `fx` when this gdb-multiarch cannot debug its architecture
/// (Debian 12's gdb 13 has no LoongArch): nothing can be read, and the report says why.
fn gdb_lacks(fx: &Fixture) -> Option<Run> {
    static ARCHES: OnceLock<String> = OnceLock::new();
    let known = ARCHES.get_or_init(|| {
        Command::new("gdb-multiarch")
            .args(["-batch", "-nx", "-ex", "set architecture"])
            .output()
            .map(|o| {
                let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
                s.push_str(&String::from_utf8_lossy(&o.stderr));
                s.to_ascii_lowercase()
            })
            .unwrap_or_default()
    });
    // gdb's names: aarch64, arm, riscv:rv64, s390:64-bit, powerpc:common64, mips, loongarch64.
    let prefix = match fx.arch.as_str() {
        "riscv64" | "riscv32" => "riscv",
        "s390x" => "s390",
        "powerpc64" => "powerpc",
        a => a,
    };
    let listed = known
        .split(|c: char| c.is_whitespace() || c == ',')
        .any(|w| w.starts_with(prefix));
    (!listed).then(|| {
        let mut run = Run::default();
        run.refused.insert(
            "*".into(),
            format!(
                "gdb-multiarch cannot debug {} here (not among its architectures)",
                fx.arch
            ),
        );
        run
    })
}

/// Whether `path` is a non-PIE executable (`ET_EXEC`): loaded at its link-time addresses.
fn is_static_exec(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|data| {
        object::File::parse(&*data).is_ok_and(|f| f.kind() == ObjectKind::Executable)
    })
}

/// What one emulated run printed.
struct Session {
    gdb_stdout: String,
    gdb_stderr: String,
    program_stdout: String,
}

/// Start `fx` under its emulator, waiting in the gdb stub, and run `script` with `env` on
/// it: inside gdb-multiarch after `qemu_connect.py`, or (`raw`) as a plain python3 script
/// speaking the remote protocol itself. Returns when the script exits (or after `limit`).
fn debug_emulated(
    dir: &Path,
    fx: &Fixture,
    limit: Duration,
    script: &str,
    env: &[(&str, &OsStr)],
    raw: bool,
) -> Result<Session> {
    let emu = fx
        .emulator
        .as_ref()
        .ok_or_else(|| Error::Invalid(format!("{}: no emulator for this fixture", fx.name)))?;
    let program = canonical(&dir.join(&fx.binary))?;
    let fixture_dir = program.parent().unwrap_or(Path::new("/")).to_path_buf();
    let connect = Scratch::new("connect.py", CONNECT.as_bytes())?;
    let main = Scratch::new("script.py", script.as_bytes())?;
    let port = free_port()?;
    let mut emulator = Command::new(&emu.command);
    emulator
        .arg("-L")
        .arg(&emu.sysroot)
        .arg("-g")
        .arg(port.to_string())
        .arg(&program)
        .args(&fx.args)
        .current_dir(&fixture_dir);
    let target = Peer::start(emulator)?;
    let mut gdb = if raw {
        let mut c = Command::new("python3");
        c.arg(&main.0);
        c
    } else {
        let mut c = Command::new("gdb-multiarch");
        c.args(["-batch", "-nx", "-x"])
            .arg(&connect.0)
            .arg("-x")
            .arg(&main.0);
        c
    };
    gdb.env("USDTKIT_QEMU_PORT", port.to_string())
        .env("USDTKIT_QEMU_PROGRAM", &program)
        .env(
            "USDTKIT_QEMU_SOLIB_PATH",
            format!(
                "{}:{}",
                emu.sysroot.join("lib").display(),
                fixture_dir.display()
            ),
        )
        .envs(env.iter().copied());
    let result = output_within(gdb, limit);
    let program_stdout = target.stop().join("\n");
    let (_, gdb_stdout, gdb_stderr) = result?;
    Ok(Session {
        gdb_stdout,
        gdb_stderr,
        program_stdout,
    })
}

/// `qemu-aarch64 version 7.2.x` and `GNU gdb (...) 13.1` shortened for the report.
fn short(qemu: &str, gdb: &str) -> String {
    let q = qemu
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .unwrap_or("?");
    let g = gdb.split_whitespace().last().unwrap_or("?");
    format!("qemu {q}, gdb {g}")
}

fn canonical(p: &Path) -> Result<PathBuf> {
    p.canonicalize().map_err(|source| Error::Io {
        path: p.to_path_buf(),
        source,
    })
}

/// A TCP port nobody listens on now (the emulator binds it a moment later).
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|source| Error::Io {
        path: PathBuf::from("127.0.0.1:0"),
        source,
    })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| Error::Io {
            path: PathBuf::from("127.0.0.1:0"),
            source,
        })
}

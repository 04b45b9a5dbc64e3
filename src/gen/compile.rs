//! Driving the C compilers through the `cc` crate: it finds gcc, clang and cross compilers for
//! a target triple and knows their flags; usdtkit adds what turns objects into executables
//! and shared libraries.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// One way of building: a compiler, a target, an optimisation level and PIE or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// The compiler command (`gcc`, `clang`, `g++`, `clang++`).
    pub compiler: String,
    /// Whether it compiles C++.
    pub cpp: bool,
    /// Target triple, e.g. `x86_64-unknown-linux-gnu` or `i686-unknown-linux-gnu`.
    pub target: String,
    /// Optimisation level as `-O` takes it (`0`, `1`, `2`, `3`, `s`).
    pub opt: String,
    /// Position-independent executable.
    pub pie: bool,
    /// No C library for the target: a static executable built with `-ffreestanding
    /// -nostdlib`, `usdtkit_fixture.h` supplying `_start` and the few functions the fixture
    /// needs (`USDTKIT_FREESTANDING`).
    pub freestanding: bool,
    /// A linker other than the compiler's default (`lld`: `-fuse-ld=lld`).
    pub linker: Option<String>,
}

/// The host's target triple, from [`crate::Arch::host`] (the one description of the host)
/// and the generator's table of targets.
pub fn host() -> &'static str {
    let little = cfg!(target_endian = "little");
    match crate::Arch::host() {
        Some(crate::Arch::X86_64) => "x86_64-unknown-linux-gnu",
        Some(crate::Arch::I386) => "i686-unknown-linux-gnu",
        Some(arch) => super::CROSS
            .iter()
            .find(|c| {
                c.arch == arch
                    && (arch != crate::Arch::Powerpc64 || c.target.contains("le-") == little)
            })
            .map_or("unknown-unknown-linux-gnu", |c| c.target),
        None => "unknown-unknown-linux-gnu",
    }
}

impl Toolchain {
    /// The flags that tell this build apart, for names and the manifest.
    pub fn flags(&self) -> Vec<String> {
        let mut f = vec![format!("-O{}", self.opt)];
        f.push(if self.pie { "-pie" } else { "-no-pie" }.into());
        if self.target.starts_with("i686") {
            f.push("-m32".into());
        }
        if self.freestanding {
            f.extend(["-ffreestanding".into(), "-static".into()]);
        }
        if let Some(l) = &self.linker {
            f.push(format!("-fuse-ld={l}"));
        }
        f
    }

    fn tool(&self) -> Result<cc::Tool> {
        let mut b = cc::Build::new();
        b.compiler(&self.compiler)
            .cpp(self.cpp)
            .target(&self.target)
            .host(host())
            .opt_level_str(&self.opt)
            .debug(false)
            .pic(self.pie)
            .warnings(false)
            .cargo_metadata(false)
            .cargo_warnings(false)
            .cargo_output(false)
            .emit_rerun_if_env_changed(false);
        b.try_get_compiler().map_err(|e| Error::Command {
            command: self.compiler.clone(),
            detail: e.to_string(),
        })
    }

    /// The compiler's `--version` first line, or why it cannot run.
    pub fn version(&self) -> Result<String> {
        let out = Command::new(&self.compiler)
            .arg("--version")
            .output()
            .map_err(|e| Error::Command {
                command: format!("{} --version", self.compiler),
                detail: e.to_string(),
            })?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string())
    }

    /// Compile and link `sources` into `out`: an executable, or a shared library when
    /// `shared`. `extra` goes at the end of the command line (libraries, rpath...).
    pub fn link(
        &self,
        sources: &[PathBuf],
        out: &Path,
        shared: bool,
        includes: &[PathBuf],
        extra: &[String],
    ) -> Result<()> {
        let mut cmd = self.tool()?.to_command();
        // char is unsigned on most non-x86 targets; the generator's expected values assume
        // signed char everywhere.
        cmd.arg("-fsigned-char");
        for dir in includes {
            cmd.arg("-I").arg(dir);
        }
        if self.freestanding {
            // No dynamic loader: static, and not PIE (nothing would apply its relocations).
            // clang's LoongArch backend crashes on sys/sdt.h's default `nor` operand
            // constraint (memory operands); `nr` gives registers and immediates.
            cmd.args([
                "-ffreestanding",
                "-nostdlib",
                "-static",
                "-fno-pie",
                "-no-pie",
                "-fuse-ld=lld",
                "-DUSDTKIT_FREESTANDING",
                "-DSTAP_SDT_ARG_CONSTRAINT=nr",
            ]);
        } else if shared {
            cmd.args(["-shared", "-fPIC"]);
        } else if self.pie {
            cmd.args(["-fPIE", "-pie"]);
        } else {
            cmd.args(["-fno-pie", "-no-pie"]);
        }
        if let (Some(l), false) = (&self.linker, self.freestanding) {
            cmd.arg(format!("-fuse-ld={l}"));
        }
        cmd.arg("-o").arg(out).args(sources).args(extra);
        run(cmd)
    }
}

fn run(mut cmd: Command) -> Result<()> {
    // The program and its arguments (not the environment the `cc` crate sets).
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = cmd.output().map_err(|e| Error::Command {
        command: shown.clone(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Command {
        command: shown,
        detail: format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

/// The directory holding `sys/sdt.h` for the host (`/usr/include` or a multiarch directory).
pub fn find_sdt_header() -> Option<PathBuf> {
    let dirs = [
        "/usr/include",
        "/usr/include/x86_64-linux-gnu",
        "/usr/include/aarch64-linux-gnu",
        "/usr/local/include",
    ];
    dirs.iter()
        .map(PathBuf::from)
        .find(|d| d.join("sys/sdt.h").exists())
}

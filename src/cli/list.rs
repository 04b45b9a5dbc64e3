//! `usdtkit list`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use usdtkit::{Arg, MappedFile, UsdtFile};

#[derive(Serialize)]
struct FileOut<'a> {
    file: String,
    arch: String,
    probes: Vec<ProbeOut<'a>>,
    errors: Vec<String>,
}

#[derive(Serialize)]
struct ProbeOut<'a> {
    provider: &'a str,
    name: &'a str,
    sites: Vec<SiteOut<'a>>,
}

#[derive(Serialize)]
struct SiteOut<'a> {
    pc: u64,
    file_offset: u64,
    semaphore: Option<u64>,
    semaphore_file_offset: Option<u64>,
    args: &'a [Arg<'a>],
}

/// The files to list for `--pid`: the ones named (resolved through the process), or every
/// file it maps. Each with the name to show and the path to open.
fn of_process(pid: u32, paths: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    if !paths.is_empty() {
        return paths
            .iter()
            .map(|p| {
                let name = p.to_string_lossy();
                usdtkit::attach::resolve::resolve(&name, Some(pid))
                    .map(|o| (p.clone(), o))
                    .map_err(|e| e.to_string())
            })
            .collect();
    }
    let objects = usdtkit::procmaps::objects(pid)
        .map_err(|e| format!("process {pid}: reading its mappings: {e}"))?;
    Ok(objects
        .into_iter()
        .map(|o| {
            let shown = if o.unlinked {
                format!("{} (via {})", o.path, o.open_path.display())
            } else {
                o.path
            };
            (PathBuf::from(shown), o.open_path)
        })
        .collect())
}

/// The files process `pid` maps that have USDT probes: the path it sees, the path to open.
pub(super) fn probed_objects(pid: u32) -> Result<Vec<(String, PathBuf)>, String> {
    let objects = usdtkit::procmaps::objects(pid)
        .map_err(|e| format!("process {pid}: reading its mappings: {e}"))?;
    let mut out = Vec::new();
    for o in objects {
        let probed = MappedFile::open(&o.open_path).and_then(|m| {
            let has = m.usdt()?.probes().next().is_some();
            Ok(has)
        });
        match probed {
            Ok(true) => out.push((o.path, o.open_path)),
            Ok(false) => {}
            Err(_) if !is_elf(&o.open_path) => {}
            // A damaged ELF file the process maps: said, not passed over.
            Err(e) => eprintln!("usdtkit: process {pid}: {} left out: {e}", o.path),
        }
    }
    Ok(out)
}

/// Whether the file starts with the ELF magic.
fn is_elf(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == *b"\x7fELF")
}

/// List the probes of `paths` (or of the files process `pid` maps); returns false when
/// anything could not be read or decoded.
pub(super) fn run(paths: &[PathBuf], pid: Option<u32>, json: bool) -> bool {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut ok = true;
    let files: Vec<(PathBuf, PathBuf)> = match pid {
        None => paths.iter().map(|p| (p.clone(), p.clone())).collect(),
        Some(pid) => match of_process(pid, paths) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("usdtkit: {e}");
                return false;
            }
        },
    };
    // With --pid and no paths, files without probes are left out: a process maps many.
    let only_probed = pid.is_some() && paths.is_empty();
    let mut listed = 0;
    for (path, open) in &files {
        let path = path.as_path();
        let mapped = match MappedFile::open(open) {
            Ok(m) => m,
            Err(e) => {
                ok = false;
                report_unreadable(&mut out, path, &e, json);
                continue;
            }
        };
        let usdt = match mapped.usdt() {
            Ok(u) => u,
            // Not an ELF file (a locale archive, a font): nothing to list. A damaged ELF
            // file is reported like any other.
            Err(_) if only_probed && !is_elf(open) => continue,
            Err(e) => {
                ok = false;
                report_unreadable(&mut out, path, &e, json);
                continue;
            }
        };
        if only_probed && usdt.probes().next().is_none() && usdt.errors().is_empty() {
            continue;
        }
        listed += 1;
        ok &= report_problems(path, &usdt);
        let written = if json {
            write_json(&mut out, path, &usdt)
        } else {
            write_table(&mut out, path, &usdt)
        };
        if written.is_err() {
            return false;
        }
    }
    if only_probed && listed == 0 {
        eprintln!(
            "usdtkit: process {}: none of the {} files it maps has USDT probes",
            pid.unwrap_or(0),
            files.len()
        );
    }
    ok
}

fn report_unreadable(out: &mut impl Write, path: &Path, e: &usdtkit::Error, json: bool) {
    eprintln!("usdtkit: {e}");
    if json {
        let v = serde_json::json!({"file": path.display().to_string(), "error": e.to_string()});
        let _ = writeln!(out, "{v}");
    }
}

/// Print every note and argument error to stderr, naming file, probe, site and argument.
fn report_problems(path: &Path, usdt: &UsdtFile<'_>) -> bool {
    let mut ok = true;
    for e in usdt.errors() {
        ok = false;
        // The path as the user named it, not the one opened (/proc/PID/root/...).
        let e = usdtkit::NoteError {
            file: Some(path.to_path_buf()),
            ..e.clone()
        };
        eprintln!("usdtkit: {e}");
    }
    for site in usdt.sites() {
        for i in 0..site.args.len() {
            if let Err(e) = site.arg_spec(i) {
                ok = false;
                eprintln!("usdtkit: {}", e.with_path(path));
            }
        }
    }
    ok
}

fn write_json(out: &mut impl Write, path: &Path, usdt: &UsdtFile<'_>) -> io::Result<()> {
    let doc = FileOut {
        file: path.display().to_string(),
        arch: usdt.arch().name(),
        probes: usdt
            .probes()
            .map(|p| ProbeOut {
                provider: p.provider,
                name: p.name,
                sites: p
                    .sites
                    .iter()
                    .map(|s| SiteOut {
                        pc: s.pc,
                        file_offset: s.file_offset,
                        semaphore: s.semaphore,
                        semaphore_file_offset: s.semaphore_file_offset,
                        args: &s.args,
                    })
                    .collect(),
            })
            .collect(),
        errors: usdt.errors().iter().map(|e| e.to_string()).collect(),
    };
    let line = serde_json::to_string(&doc).map_err(io::Error::other)?;
    writeln!(out, "{line}")
}

fn write_table(out: &mut impl Write, path: &Path, usdt: &UsdtFile<'_>) -> io::Result<()> {
    let elf = usdt.elf();
    let probes: Vec<_> = usdt.probes().collect();
    writeln!(
        out,
        "{}: {}, ELF{} {}-endian, {} probes, {} sites{}",
        path.display(),
        usdt.arch(),
        if elf.is_64 { 64 } else { 32 },
        if elf.byte_order == usdtkit::elf::ByteOrder::Little {
            "little"
        } else {
            "big"
        },
        probes.len(),
        usdt.sites().len(),
        match usdt.errors().len() {
            0 => String::new(),
            n => format!(", {n} malformed notes"),
        }
    )?;
    if probes.is_empty() {
        return Ok(());
    }
    let header = ["PROBE", "PC", "OFFSET", "SEMAPHORE", "ARGS"];
    let mut rows: Vec<[String; 5]> = Vec::new();
    for p in &probes {
        for s in &p.sites {
            let sem = match (s.semaphore, s.semaphore_file_offset) {
                (Some(a), Some(o)) => format!("{a:#x} (off {o:#x})"),
                _ => "-".into(),
            };
            rows.push([
                format!("{}:{}", p.provider, p.name),
                format!("{:#x}", s.pc),
                format!("{:#x}", s.file_offset),
                sem,
                s.args_text.to_string(),
            ]);
        }
    }
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s
    };
    writeln!(out, "{}", line(header))?;
    for r in &rows {
        writeln!(out, "{}", line([&r[0], &r[1], &r[2], &r[3], &r[4]]))?;
    }
    Ok(())
}

//! Where a binary named without a `/` is: like the dynamic loader for libraries (and
//! through `/proc/PID/maps` when a pid is given), like the shell for executables.

use std::path::{Path, PathBuf};

/// Library directories searched after `LD_LIBRARY_PATH` and `/etc/ld.so.conf.d`.
const LIB_DIRS: &[&str] = &[
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/local/lib",
];

fn matches_lib(file: &str, name: &str) -> bool {
    file == name
        || file
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Directories named in `/etc/ld.so.conf.d/*.conf`.
fn ld_conf_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let Ok(rd) = std::fs::read_dir("/etc/ld.so.conf.d") else {
        return dirs;
    };
    let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "conf"))
    {
        if let Ok(text) = std::fs::read_to_string(f) {
            dirs.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| l.starts_with('/'))
                    .map(PathBuf::from),
            );
        }
    }
    dirs
}

/// Resolve `name` for attaching. A name with a `/` is used as it is. With a pid, the first
/// file mapped by that process whose name is `name` or `name.*` wins (`libc.so` finds
/// `libc.so.6`). Otherwise a name containing `.so` is searched like the dynamic loader would,
/// and any other name in `PATH`.
pub fn resolve(name: &str, pid: Option<u32>) -> Result<PathBuf, String> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    if let Some(pid) = pid {
        let maps = format!("/proc/{pid}/maps");
        let text = std::fs::read_to_string(&maps).map_err(|e| format!("{maps}: {e}"))?;
        for line in text.lines() {
            let Some(path) = line.split_whitespace().nth(5) else {
                continue;
            };
            let file = Path::new(path)
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or("");
            if path.starts_with('/') && matches_lib(file, name) {
                // Through the process's root, so containers resolve too.
                return Ok(PathBuf::from(format!("/proc/{pid}/root{path}")));
            }
        }
        return Err(format!("no file named {name} is mapped by process {pid}"));
    }
    let var_dirs = |var: &str| -> Vec<PathBuf> {
        std::env::var(var)
            .map(|v| {
                v.split(':')
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let dirs: Vec<PathBuf> = if name.contains(".so") {
        let mut d = var_dirs("LD_LIBRARY_PATH");
        d.extend(ld_conf_dirs());
        d.extend(LIB_DIRS.iter().map(PathBuf::from));
        d
    } else {
        var_dirs("PATH")
    };
    for dir in &dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut hits: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|f| f == name || (name.contains(".so") && matches_lib(f, name)))
            })
            .map(|e| e.path())
            .collect();
        hits.sort();
        if let Some(p) = hits.into_iter().next() {
            return Ok(p);
        }
    }
    Err(format!(
        "{name} not found in {} directories searched",
        dirs.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_a_slash_are_kept() {
        assert_eq!(resolve("./x", None).unwrap(), PathBuf::from("./x"));
    }

    #[test]
    fn libraries_and_executables_are_found() {
        let libc = resolve("libc.so", None).unwrap();
        assert!(
            libc.to_str().unwrap().contains("libc.so"),
            "{}",
            libc.display()
        );
        let sh = resolve("sh", None).unwrap();
        assert!(sh.ends_with("sh"));
        assert!(resolve("no-such-binary-usdtkit", None).is_err());
    }

    #[test]
    fn through_a_process_maps() {
        let me = std::process::id();
        let p = resolve("libc.so", Some(me)).unwrap();
        assert!(
            p.starts_with(format!("/proc/{me}/root/")),
            "{}",
            p.display()
        );
        assert!(p.exists());
        assert!(resolve("libnotmapped.so", Some(me)).is_err());
    }
}

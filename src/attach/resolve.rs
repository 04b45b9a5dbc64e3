//! Where a binary named without a `/` is: like the dynamic loader for libraries (and
//! through `/proc/PID/maps` when a pid is given), like the shell for executables.

use std::path::PathBuf;

use super::AttachErrorKind;

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

/// Resolve `name` for attaching.
///
/// With a pid, the process decides: a path it maps (as it sees it, inside its own mount
/// namespace) or the first file it maps whose name is `name` or `name.*` (`libc.so` finds
/// `libc.so.6`; `memfd:NAME` finds a memfd) is opened through `/proc/PID/root` or, when it
/// has no path anymore, `/proc/PID/map_files`. A path the process does not map is taken
/// from its root if it exists there, as given otherwise.
///
/// Without a pid, a name with a `/` is used as it is; a name containing `.so` is searched
/// like the dynamic loader would, and any other name in `PATH`.
pub fn resolve(name: &str, pid: Option<u32>) -> Result<PathBuf, AttachErrorKind> {
    if let Some(pid) = pid {
        return through_process(name, pid);
    }
    if name.contains('/') {
        return Ok(PathBuf::from(name));
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
    let mut near: Vec<PathBuf> = Vec::new();
    for dir in &dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        near.extend(
            rd.flatten()
                .filter(|e| {
                    e.file_name().to_str().is_some_and(|f| {
                        f.starts_with(stem(name)) && (!name.contains(".so") || f.contains(".so"))
                    })
                })
                .map(|e| e.path()),
        );
    }
    near.sort();
    near.dedup();
    Err(AttachErrorKind::NotFound {
        what: format!("{name} not found in {} directories searched", dirs.len()),
        near: near
            .iter()
            .take(3)
            .map(|p| p.display().to_string())
            .collect(),
    })
}

fn through_process(name: &str, pid: u32) -> Result<PathBuf, AttachErrorKind> {
    let objects = crate::procmaps::objects(pid)
        .map_err(|e| AttachErrorKind::os(format!("reading the mappings of process {pid}"), e))?;
    if name.starts_with('/') {
        if let Some(o) = objects.iter().find(|o| o.path == name) {
            return Ok(o.open_path.clone());
        }
        let rooted = crate::procmaps::through(pid, name);
        return Ok(if !crate::procmaps::same_root(pid) && rooted.exists() {
            rooted
        } else {
            PathBuf::from(name)
        });
    }
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let found = objects.iter().find(|o| {
        let file = o.path.rsplit('/').next().unwrap_or("");
        matches_lib(file, name)
    });
    match found {
        Some(o) => Ok(o.open_path.clone()),
        None => {
            let near = objects
                .iter()
                .map(|o| o.path.clone())
                .filter(|p| {
                    let file = p.rsplit('/').next().unwrap_or("");
                    file.starts_with(stem(name))
                })
                .take(3)
                .collect();
            Err(AttachErrorKind::NotFound {
                what: format!("no file named {name} is mapped by process {pid}"),
                near,
            })
        }
    }
}

/// `libruby` of `libruby.so`, `python3` of `python3`.
fn stem(name: &str) -> &str {
    name.split(".so").next().unwrap_or(name)
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
        assert!(p.to_str().unwrap().contains("libc.so"), "{}", p.display());
        assert!(p.exists());
        assert!(resolve("libnotmapped.so", Some(me)).is_err());
        // Sharing our mount namespace and root, the process's paths are ours.
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(resolve(exe.to_str().unwrap(), Some(me)).unwrap(), exe);
    }

    #[test]
    fn near_names_are_suggested() {
        let e = resolve("libc-nosuch.so", None).unwrap_err().to_string();
        assert!(e.contains("not found"), "{e}");
        let e = resolve("libc.so.99", None).unwrap_err().to_string();
        assert!(e.contains("did you mean") && e.contains("libc"), "{e}");
    }
}

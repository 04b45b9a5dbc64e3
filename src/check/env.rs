//! Where a peer tool runs: on this machine, or inside a Debian root of another release (the
//! newer peers: Debian 13's bpftrace, bcc, gdb and perf), entered through a private mount
//! namespace so that nothing it mounts outlives it.
//!
//! A tool in such a root sees the host's /proc, /sys (with tracefs and bpffs) and /dev, and
//! the directories the harness binds at their host paths (the corpus, the temporary
//! directory), so it can attach to the host's fixture processes by pid and open their files
//! by the same paths.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The default place `ci/peers.sh` builds the Debian 13 root in.
pub const DEBIAN13_DEFAULT: &str = "/var/lib/usdtkit/debian13";
/// The variable that moves it.
pub const DEBIAN13_VAR: &str = "USDTKIT_DEBIAN13_ROOT";

/// Where a tool runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Env {
    /// This machine.
    Host,
    /// A Debian root of another release.
    Root {
        /// Its name in reports (`Debian 13`).
        name: &'static str,
        /// Its directory.
        dir: PathBuf,
        /// Host directories visible inside at the same path.
        binds: Vec<PathBuf>,
    },
}

impl Env {
    /// The Debian 13 root, where `ci/peers.sh` builds it (or `$USDTKIT_DEBIAN13_ROOT`).
    pub fn debian13() -> Env {
        let dir = std::env::var_os(DEBIAN13_VAR)
            .map_or_else(|| PathBuf::from(DEBIAN13_DEFAULT), PathBuf::from);
        Env::Root {
            name: "Debian 13",
            dir,
            binds: vec![std::env::temp_dir()],
        }
    }

    /// This environment with `dir` visible too (a corpus).
    pub fn with_bind(&self, dir: &Path) -> Env {
        match self {
            Env::Host => Env::Host,
            Env::Root {
                name,
                dir: d,
                binds,
            } => {
                let mut binds = binds.clone();
                if !binds.iter().any(|b| b == dir) {
                    binds.push(dir.to_path_buf());
                }
                Env::Root {
                    name,
                    dir: d.clone(),
                    binds,
                }
            }
        }
    }

    /// A short tag for implementation names (`host`, `debian13`).
    pub fn tag(&self) -> &'static str {
        match self {
            Env::Host => "host",
            Env::Root { .. } => "debian13",
        }
    }

    /// The command-line name of `tool` running here: `tool`, or `tool@debian13`.
    pub fn id(&self, tool: &str) -> String {
        match self {
            Env::Host => tool.to_string(),
            Env::Root { .. } => format!("{tool}@{}", self.tag()),
        }
    }

    /// Its name in reports, when not the host.
    pub fn label(&self) -> Option<&'static str> {
        match self {
            Env::Host => None,
            Env::Root { name, .. } => Some(name),
        }
    }

    /// Whether `program` (an absolute path inside the environment) is installed; the reason
    /// when it is not.
    pub fn check(&self, program: &str) -> Result<(), String> {
        match self {
            Env::Host => Ok(()),
            Env::Root { name, dir, .. } => {
                if !dir.join("usr/bin").is_dir() {
                    let why = std::fs::read_to_string(dir.with_extension("failed"))
                        .map(|s| format!(": {}", s.trim()))
                        .unwrap_or_else(|_| " (ci/peers.sh builds it)".into());
                    return Err(format!(
                        "not available: no {name} root at {}{why}",
                        dir.display()
                    ));
                }
                let inside = dir.join(program.trim_start_matches('/'));
                if inside.exists() {
                    Ok(())
                } else {
                    Err(format!(
                        "not available: {program} is not installed in the {name} root at {}",
                        dir.display()
                    ))
                }
            }
        }
    }

    /// A command running `program` in this environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self {
            Env::Host => Command::new(program),
            Env::Root { dir, binds, .. } => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                    .arg(ENTER)
                    .arg("sh")
                    .arg(dir)
                    .arg(binds.len().to_string())
                    .args(binds)
                    .arg(program);
                c
            }
        }
    }
}

/// Enter a root: bind the host's /proc, /sys and /dev (with what is mounted below them) and
/// the listed directories at their own paths, then chroot. Runs in a fresh mount namespace.
const ENTER: &str = r#"set -e
r=$1; n=$2; shift 2
for d in proc sys dev; do mount --rbind "/$d" "$r/$d"; done
while [ "$n" -gt 0 ]; do mkdir -p "$r$1"; mount --bind "$1" "$r$1"; shift; n=$((n-1)); done
exec chroot "$r" "$@""#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_root_says_where_and_why() {
        let env = Env::Root {
            name: "Debian 13",
            dir: "/nonexistent/usdtkit-root".into(),
            binds: vec![],
        };
        let e = env.check("/usr/bin/bpftrace").unwrap_err();
        assert!(
            e.starts_with("not available: no Debian 13 root at /nonexistent"),
            "{e}"
        );
        assert_eq!(Env::Host.check("/usr/bin/anything"), Ok(()));
        let c = env.with_bind(Path::new("/corpus")).command("bpftrace");
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(c.get_program(), "unshare");
        assert_eq!(
            args[args.len() - 4..],
            ["/nonexistent/usdtkit-root", "1", "/corpus", "bpftrace"]
        );
    }
}

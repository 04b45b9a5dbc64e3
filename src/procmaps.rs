//! `/proc/PID/maps`, read once for everything that needs a process's mappings: resolving a
//! library name through a process, load biases, the semaphore fix-up.

use std::io;
use std::path::{Path, PathBuf};

/// One mapping of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Mapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Offset in the file of `start`.
    pub offset: u64,
    /// Inode of the file (0 for anonymous mappings).
    pub inode: u64,
    /// The path as the process sees it (`[heap]`, `/memfd:x (deleted)`, empty...).
    pub path: String,
}

impl Mapping {
    /// Whether the mapping contains `addr`.
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.start && addr < self.end
    }
}

/// Parse one line of a maps file.
pub fn parse_line(line: &str) -> Option<Mapping> {
    let mut f = line.splitn(6, ' ');
    let (range, perms, offset, _dev, inode) =
        (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    let path = f.next().unwrap_or("").trim_start().to_string();
    let (s, e) = range.split_once('-')?;
    let p = perms.as_bytes();
    Some(Mapping {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        read: p.first() == Some(&b'r'),
        write: p.get(1) == Some(&b'w'),
        exec: p.get(2) == Some(&b'x'),
        offset: u64::from_str_radix(offset, 16).ok()?,
        inode: inode.parse().ok()?,
        path,
    })
}

/// Every mapping of process `pid`.
pub fn read(pid: u32) -> io::Result<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    Ok(text.lines().filter_map(parse_line).collect())
}

/// The mappings of `pid` that map `file` (the same inode on the same device, so a path
/// seen through `/proc/PID/root`, a bind mount or `/proc/PID/map_files` matches too).
pub fn of_file(pid: u32, file: impl AsRef<Path>) -> io::Result<Vec<Mapping>> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file)?;
    let maps = read(pid)?;
    let same = |p: PathBuf| {
        std::fs::metadata(p).is_ok_and(|x| x.ino() == meta.ino() && x.dev() == meta.dev())
    };
    Ok(maps
        .into_iter()
        .filter(|m| {
            m.inode == meta.ino()
                && ((m.path.starts_with('/') && same(through(pid, &m.path)))
                    || same(map_file(pid, m)))
        })
        .collect())
}

/// A file mapped by a process, once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Object {
    /// The path as the process sees it, without ` (deleted)`.
    pub path: String,
    /// A path this process can open it by: the path itself when the process shares our
    /// mount namespace and root, `/proc/PID/root/PATH` when it does not, or `/proc/PID/map_files/START-END` when it has no path there (a memfd, a
    /// file deleted or replaced since it was mapped).
    pub open_path: PathBuf,
    /// Whether `open_path` goes through `map_files` (the path names no file anymore).
    pub unlinked: bool,
    /// Inode.
    pub inode: u64,
}

fn map_file(pid: u32, m: &Mapping) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end))
}

/// Every file process `pid` maps, in the order of their first mappings.
pub fn objects(pid: u32) -> io::Result<Vec<Object>> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<Object> = Vec::new();
    let shared = same_root(pid);
    for m in read(pid)? {
        if m.inode == 0 || !m.path.starts_with('/') {
            continue;
        }
        if out
            .iter()
            .any(|o| o.inode == m.inode && m.path.starts_with(&o.path))
        {
            continue;
        }
        let (path, deleted) = match m.path.strip_suffix(" (deleted)") {
            Some(p) => (p.to_string(), true),
            None => (m.path.clone(), false),
        };
        let rooted = if shared {
            PathBuf::from(&path)
        } else {
            through(pid, &path)
        };
        let reachable = !deleted && std::fs::metadata(&rooted).is_ok_and(|x| x.ino() == m.inode);
        out.push(Object {
            open_path: if reachable { rooted } else { map_file(pid, &m) },
            unlinked: !reachable,
            path,
            inode: m.inode,
        });
    }
    Ok(out)
}

/// The load bias of `file` in `pid`: where its mapping of file offset `offset` starts, less
/// the link-time address `vaddr` of that offset (`vaddr` and `offset` of one PT_LOAD).
/// `None` when the process does not map that part of the file.
pub fn load_bias(maps: &[Mapping], vaddr: u64, offset: u64) -> Option<u64> {
    let page = offset & !0xfff;
    maps.iter()
        .find(|m| m.offset == page)
        .map(|m| m.start.wrapping_sub(vaddr & !0xfff))
}

/// Whether process `pid` sees the files we see under the same paths: same mount namespace,
/// same root directory.
pub fn same_root(pid: u32) -> bool {
    let link = |p: String| std::fs::read_link(p).ok();
    let mine = link("/proc/self/ns/mnt".into());
    mine.is_some()
        && mine == link(format!("/proc/{pid}/ns/mnt"))
        && link(format!("/proc/{pid}/root")) == link("/proc/self/root".into())
}

/// `path` seen from inside process `pid` (its root may differ from ours).
pub fn through(pid: u32, path: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let m = parse_line(
            "7f1c2a400000-7f1c2a428000 r--p 00028000 fe:01 1843245                    /usr/lib/x86_64-linux-gnu/libc.so.6",
        )
        .unwrap();
        assert_eq!(
            (m.start, m.end, m.offset, m.inode),
            (0x7f1c2a400000, 0x7f1c2a428000, 0x28000, 1843245)
        );
        assert!(m.read && !m.write && !m.exec);
        assert_eq!(m.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
        let anon = parse_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0").unwrap();
        assert!(anon.write && anon.path.is_empty());
        let memfd = parse_line("7f00-7f10 r-xp 00001000 00:01 99 /memfd:lib (deleted)").unwrap();
        assert_eq!(memfd.path, "/memfd:lib (deleted)");
        assert!(parse_line("garbage").is_none());
        let me = std::process::id();
        let objs = objects(me).unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let o = objs
            .iter()
            .find(|o| Path::new(&o.path) == exe)
            .expect("the test binary maps itself");
        assert!(!o.unlinked && o.open_path.exists());
        assert!(!of_file(me, &o.open_path).unwrap().is_empty());
        let maps = vec![m];
        assert_eq!(
            load_bias(&maps, 0x28000 + 0x100, 0x28100),
            Some(0x7f1c2a400000 - 0x28000)
        );
    }
}

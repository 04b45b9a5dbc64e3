//! Spec ids shared between processes. A loaded program's `__bpf_usdt_specs` can be reached
//! by any process (by program or map id, or a pinned path), and each process hands out ids
//! on its own: two of them would hand out the same ids and overwrite each other's specs. So
//! each usdtkit process claims ranges of a map's ids in a small file that every usdtkit
//! process reads and writes under an exclusive lock (`/run/usdtkit/specs-MAPID`), and hands
//! out only ids of its ranges. A claim names its process by pid and start time; claims of
//! processes that have ended (even by SIGKILL) are dropped by the next process that claims,
//! since their links, and so their use of those ids, ended with them.
//!
//! Only usdtkit processes take part: libbpf's `bpf_program__attach_usdt` in another process
//! sharing the program still hands out ids of its own (libbpf keeps them per object).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::PathBuf;

/// Where the claim files live: `/run/usdtkit` (a tmpfs: claims never outlive a boot), or
/// the temporary directory when `/run` cannot be written.
fn dir() -> PathBuf {
    for d in [
        PathBuf::from("/run/usdtkit"),
        std::env::temp_dir().join("usdtkit"),
    ] {
        if std::fs::create_dir_all(&d).is_ok() {
            return d;
        }
    }
    std::env::temp_dir()
}

fn path(map_id: u32) -> PathBuf {
    dir().join(format!("specs-{map_id}"))
}

/// A process: pid and start time (clock ticks after boot), so a reused pid is another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    pid: u32,
    start: u64,
}

fn start_time(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields resume after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn me() -> Owner {
    Owner {
        pid: std::process::id(),
        start: start_time("self").unwrap_or(0),
    }
}

fn alive(o: &Owner) -> bool {
    start_time(&o.pid.to_string()) == Some(o.start)
}

/// One line of a claim file: `PID START FIRST END` (ids FIRST..END).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Claim {
    owner: Owner,
    first: u32,
    end: u32,
}

fn parse(text: &str) -> Vec<Claim> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let claim = Claim {
                owner: Owner {
                    pid: f.first()?.parse().ok()?,
                    start: f.get(1)?.parse().ok()?,
                },
                first: f.get(2)?.parse().ok()?,
                end: f.get(3)?.parse().ok()?,
            };
            (claim.first < claim.end).then_some(claim)
        })
        .collect()
}

fn render(claims: &[Claim]) -> String {
    claims
        .iter()
        .map(|c| format!("{} {} {} {}\n", c.owner.pid, c.owner.start, c.first, c.end))
        .collect()
}

/// The ranges of `0..capacity` no claim holds, in order.
fn gaps(claims: &[Claim], capacity: u32) -> Vec<(u32, u32)> {
    let mut taken: Vec<(u32, u32)> = claims.iter().map(|c| (c.first, c.end)).collect();
    taken.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for (first, end) in taken {
        if first > at {
            out.push((at, first.min(capacity)));
        }
        at = at.max(end);
    }
    if at < capacity {
        out.push((at, capacity));
    }
    out.retain(|(a, b)| a < b);
    out
}

/// The claim file of a map, open and locked for as long as it lives.
struct Locked {
    file: File,
    claims: Vec<Claim>,
}

impl Locked {
    fn open(map_id: u32) -> io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let path = path(map_id);
        let mut file = loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            crate::sys::lock_exclusive(&file)?;
            // The last process to give its claims back removes the file: a lock taken on a
            // file removed meanwhile guards nothing, so open it again.
            let (locked, named) = (file.metadata()?, std::fs::metadata(&path));
            if named.is_ok_and(|n| n.ino() == locked.ino() && n.dev() == locked.dev()) {
                break file;
            }
        };
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(Locked {
            file,
            claims: parse(&text),
        })
    }

    fn save(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(render(&self.claims).as_bytes())
    }
}

/// Claim up to `want` more ids of map `map_id` (ids `0..capacity`) for this process, lowest
/// first; claims of ended processes are dropped first. Returns the ranges claimed (none when
/// every id is held).
pub(crate) fn claim(map_id: u32, capacity: u32, want: u32) -> io::Result<Vec<(u32, u32)>> {
    sweep(map_id);
    let mut l = Locked::open(map_id)?;
    l.claims.retain(alive_claim);
    let me = me();
    let mut got = Vec::new();
    let mut left = want;
    for (first, end) in gaps(&l.claims, capacity) {
        if left == 0 {
            break;
        }
        let end = end.min(first.saturating_add(left));
        left -= end - first;
        got.push((first, end));
        l.claims.push(Claim {
            owner: me,
            first,
            end,
        });
    }
    l.save()?;
    Ok(got)
}

/// Remove the claim files of maps that no longer exist (their claimers were killed before
/// giving their claims back; the ids of a map that is gone mean nothing).
fn sweep(except: u32) {
    let Ok(dir) = std::fs::read_dir(dir()) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_prefix("specs-"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let gone = id != except
            && crate::sys::bpf::map_fd_by_id(id)
                .is_err_and(|e| e.kind() == io::ErrorKind::NotFound);
        if gone {
            if let Ok(l) = Locked::open(id) {
                std::fs::remove_file(path(id)).ok();
                drop(l);
            }
        }
    }
}

/// How many ids of `map_id` other live processes hold, and which processes.
pub(crate) fn held_by_others(map_id: u32) -> (u32, Vec<u32>) {
    let Ok(l) = Locked::open(map_id) else {
        return (0, Vec::new());
    };
    let me = me();
    let mut pids = Vec::new();
    let mut n = 0;
    for c in l.claims.iter().filter(|c| c.owner != me && alive_claim(c)) {
        n += c.end - c.first;
        if !pids.contains(&c.owner.pid) {
            pids.push(c.owner.pid);
        }
    }
    (n, pids)
}

fn alive_claim(c: &Claim) -> bool {
    alive(&c.owner)
}

/// Give back every id of `map_id` this process claimed (its last link on the map is gone).
pub(crate) fn release(map_id: u32) -> io::Result<()> {
    let mut l = Locked::open(map_id)?;
    let me = me();
    l.claims.retain(|c| c.owner != me && alive_claim(c));
    if l.claims.is_empty() {
        // Removed while locked; a process waiting on the lock sees that and opens anew.
        return std::fs::remove_file(path(map_id));
    }
    l.save()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_between_claims() {
        let o = Owner { pid: 1, start: 1 };
        let c = |first, end| Claim {
            owner: o,
            first,
            end,
        };
        assert_eq!(gaps(&[], 10), [(0, 10)]);
        assert_eq!(gaps(&[c(2, 4), c(6, 8)], 10), [(0, 2), (4, 6), (8, 10)]);
        assert_eq!(gaps(&[c(0, 10)], 10), []);
        assert_eq!(gaps(&[c(4, 6), c(0, 5)], 8), [(6, 8)]);
        assert_eq!(parse(&render(&[c(2, 4), c(6, 8)])), [c(2, 4), c(6, 8)]);
        assert_eq!(parse("garbage\n1 2 3\n1 2 5 5\n"), []);
    }

    #[test]
    fn claims_of_ended_processes_are_dropped_and_ours_released() {
        // No kernel map has this id: the test owns the file.
        let map_id = u32::MAX - 11;
        std::fs::remove_file(path(map_id)).ok();
        // A process that has ended: pid 1 with a start time it never had.
        let dead = Claim {
            owner: Owner {
                pid: 1,
                start: u64::MAX,
            },
            first: 0,
            end: 100,
        };
        std::fs::write(path(map_id), render(&[dead])).unwrap();
        assert_eq!(claim(map_id, 1000, 10).unwrap(), [(0, 10)]);
        assert_eq!(claim(map_id, 1000, 5).unwrap(), [(10, 15)]);
        assert_eq!(held_by_others(map_id), (0, vec![]));
        // Another live process's claim is kept and skipped.
        let mut text = std::fs::read_to_string(path(map_id)).unwrap();
        let init = start_time("1").unwrap();
        text.push_str(&format!("1 {init} 15 20\n"));
        std::fs::write(path(map_id), text).unwrap();
        assert_eq!(claim(map_id, 1000, 10).unwrap(), [(20, 30)]);
        assert_eq!(held_by_others(map_id), (5, vec![1]));
        release(map_id).unwrap();
        let left = parse(&std::fs::read_to_string(path(map_id)).unwrap());
        assert_eq!(left.len(), 1);
        assert_eq!((left[0].first, left[0].end), (15, 20));
        // The last claims given back remove the file.
        std::fs::write(path(map_id), "").unwrap();
        assert_eq!(claim(map_id, 1000, 1).unwrap(), [(0, 1)]);
        release(map_id).unwrap();
        assert!(!path(map_id).exists());
    }
}

//! The uprobe PMU through perf_event_open(2), and the uprobe syscall probe.

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `PERF_FLAG_FD_CLOEXEC` from `linux/perf_event.h`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// `struct perf_event_attr` up to `config2` (`PERF_ATTR_SIZE_VER1`, 72 bytes); the kernel
/// takes the size and treats the rest as zero.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
}

/// The uprobe PMU's perf event type (`/sys/bus/event_source/devices/uprobe/type`).
pub(crate) fn uprobe_pmu_type() -> io::Result<u32> {
    let path = "/sys/bus/event_source/devices/uprobe/type";
    let text = std::fs::read_to_string(path)?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {text:?}")))
}

/// Open a uprobe perf event at `offset` of `path` for `pid` (-1: every process), with the
/// semaphore's `ref_ctr_offset` (0: none), in bits 32-63 of `config` as the PMU's
/// `format/ref_ctr_offset` says.
pub(crate) fn open_uprobe(
    pmu: u32,
    path: &CStr,
    offset: u64,
    ref_ctr_offset: u64,
    pid: i32,
) -> io::Result<OwnedFd> {
    let attr = PerfEventAttr {
        type_: pmu,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: ref_ctr_offset << 32,
        config1: path.as_ptr() as u64,
        config2: offset,
        ..PerfEventAttr::default()
    };
    // Like libbpf: a per-process event on any CPU, or (every process) an event on CPU 0 whose
    // BPF program runs wherever the probe hits.
    let (pid, cpu) = if pid < 0 { (-1, 0) } else { (pid, -1) };
    // SAFETY: `attr` is initialised and `path` outlives the call (the kernel copies it).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            pid,
            cpu,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative perf_event_open return is a new fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether the kernel has the x86-64 `uprobe()` syscall (Linux 6.18+), which comes with
/// optimized uprobes on 5-byte nops: called outside a uprobe trampoline it fails with ENXIO;
/// without it, ENOSYS.
pub(crate) fn has_uprobe_syscall() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    const NR_UPROBE: libc::c_long = 336;
    // SAFETY: the syscall takes no arguments; outside a trampoline it only returns an error.
    let r = unsafe { libc::syscall(NR_UPROBE) };
    r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO)
}

#[cfg(test)]
mod tests {
    #[test]
    fn attr_is_ver1() {
        assert_eq!(std::mem::size_of::<super::PerfEventAttr>(), 72);
        assert_eq!(std::mem::offset_of!(super::PerfEventAttr, config1), 56);
    }
}

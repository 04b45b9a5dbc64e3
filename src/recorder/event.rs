//! The recorder's ring-buffer records (`struct event_hdr` and what follows it in
//! `src/bpf/recorder.bpf.c`), read into a [`Hit`] that is reused from record to record.

use std::path::Path;
use std::sync::Arc;

use super::sites::{ArgShape, SiteInfo};

pub(super) use crate::attach::spec::MAX_ARGS;
/// Size of `struct event_hdr`.
pub(super) const HDR: usize = 32;
/// Size of `struct str_hdr`.
const STR_HDR: usize = 8;
/// `STR_CUT` and `STR_FAILED` of recorder.bpf.c.
const STR_CUT: u8 = 1;
const STR_FAILED: u8 = 2;

/// One argument of a hit.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum ArgValue {
    /// An integer, interpreted per the note's size and sign.
    Int(i128),
    /// A value marked `f` in the note.
    Float(f64),
    /// The argument could not be read; why.
    Error(String),
}

/// The string an argument points to, as read at the hit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HitString {
    /// Which argument pointed to it.
    pub arg: usize,
    /// The bytes read, without the terminating NUL.
    pub bytes: Vec<u8>,
    /// The string goes on past the slot: `bytes` holds its first `str_len - 1` bytes.
    pub cut: bool,
    /// The read failed with this errno (`bytes` is then empty).
    pub errno: Option<i32>,
}

impl HitString {
    /// The bytes as text (invalid UTF-8 replaced).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    /// Why the read failed, if it did.
    pub fn error(&self) -> Option<String> {
        self.errno.map(|e| {
            format!(
                "string read failed: {}",
                std::io::Error::from_raw_os_error(e)
            )
        })
    }
}

/// One recorded hit.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Hit {
    /// The file holding the probe.
    pub object: Arc<Path>,
    /// Provider.
    pub provider: Arc<str>,
    /// Probe name.
    pub name: Arc<str>,
    /// Link-time address of the site.
    pub pc: u64,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Run-time instruction pointer the probe saw.
    pub ip: u64,
    /// The site's user cookie.
    pub cookie: u64,
    /// Arguments, in order.
    pub args: Vec<ArgValue>,
    /// Strings read behind the arguments asked for, in argument order.
    pub strings: Vec<HitString>,
}

impl Default for Hit {
    fn default() -> Self {
        Hit {
            object: Arc::from(Path::new("")),
            provider: Arc::from(""),
            name: Arc::from(""),
            pc: 0,
            pid: 0,
            tid: 0,
            ip: 0,
            cookie: 0,
            args: Vec::new(),
            strings: Vec::new(),
        }
    }
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}

/// The fixed part of a record.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub cookie: u64,
    pub ip: u64,
    pub pid: u32,
    pub tid: u32,
    arg_cnt: i32,
    err_mask: u16,
    nvals: usize,
    nstrs: usize,
}

/// The header of record `b`, if `b` is as long as the header says (`str_len` is the
/// capacity of each string slot the recorder was loaded with).
pub(super) fn header(b: &[u8], str_len: usize) -> Option<Header> {
    if b.len() < HDR {
        return None;
    }
    let h = Header {
        cookie: u64_at(b, 0),
        ip: u64_at(b, 8),
        pid: u32_at(b, 16),
        tid: u32_at(b, 20),
        arg_cnt: u32_at(b, 24) as i32,
        err_mask: u16::from_ne_bytes([b[28], b[29]]),
        nvals: usize::from(b[30]),
        nstrs: usize::from(b[31]),
    };
    let len = HDR + 8 * h.nvals + h.nstrs * (STR_HDR + str_len);
    (h.nvals <= MAX_ARGS && b.len() >= len).then_some(h)
}

/// Fill `hit` from record `b` of `site` (its header `h` already read).
pub(super) fn fill(hit: &mut Hit, b: &[u8], h: &Header, site: &SiteInfo, str_len: usize) {
    if !Arc::ptr_eq(&hit.object, &site.object) {
        hit.object = Arc::clone(&site.object);
    }
    if !Arc::ptr_eq(&hit.provider, &site.provider) {
        hit.provider = Arc::clone(&site.provider);
    }
    if !Arc::ptr_eq(&hit.name, &site.name) {
        hit.name = Arc::clone(&site.name);
    }
    hit.pc = site.pc;
    hit.pid = h.pid;
    hit.tid = h.tid;
    hit.ip = h.ip;
    hit.cookie = h.cookie;
    hit.args.clear();
    for i in 0..h.nvals {
        let raw = u64_at(b, HDR + 8 * i);
        let err = (h.err_mask & (1 << i) != 0).then_some(raw as i64 as i32);
        hit.args.push(interpret(site, i, raw, err));
    }
    if h.arg_cnt < 0 {
        hit.args.push(ArgValue::Error(format!(
            "bpf_usdt_arg_cnt: {}",
            std::io::Error::from_raw_os_error(-h.arg_cnt)
        )));
    } else if h.arg_cnt as usize > h.nvals {
        for i in h.nvals..h.arg_cnt as usize {
            hit.args.push(ArgValue::Error(format!(
                "argument {i}: the recorder reads at most {MAX_ARGS} arguments"
            )));
        }
    }
    hit.strings.clear();
    let mut o = HDR + 8 * h.nvals;
    for _ in 0..h.nstrs {
        let arg = usize::from(b[o]);
        let flags = b[o + 1];
        let len = u32_at(b, o + 4) as i32;
        let data = &b[o + STR_HDR..o + STR_HDR + str_len];
        let (bytes, errno) = if flags & STR_FAILED != 0 || len < 0 {
            (Vec::new(), Some(-len))
        } else {
            (data[..(len as usize).min(str_len)].to_vec(), None)
        };
        hit.strings.push(HitString {
            arg,
            bytes,
            cut: flags & STR_CUT != 0,
            errno,
        });
        o += STR_HDR + str_len;
    }
}

fn interpret(site: &SiteInfo, i: usize, raw: u64, err: Option<i32>) -> ArgValue {
    if let Some(err) = err {
        let why = site
            .unreadable
            .iter()
            .find(|u| u.0 == i)
            .map(|u| u.1.clone())
            .unwrap_or_else(|| format!("read failed: {}", std::io::Error::from_raw_os_error(-err)));
        return ArgValue::Error(why);
    }
    let Some(Some(spec)) = site.args.get(i) else {
        return ArgValue::Error("argument not decoded".into());
    };
    value(spec, raw)
}

fn value(spec: &ArgShape, raw: u64) -> ArgValue {
    if spec.float {
        return match spec.size {
            4 => ArgValue::Float(f64::from(f32::from_bits(raw as u32))),
            8 => ArgValue::Float(f64::from_bits(raw)),
            n => ArgValue::Error(format!("{n}-byte float")),
        };
    }
    // bpf_usdt_arg() already sign- or zero-extended the value to 64 bits.
    ArgValue::Int(if spec.signed {
        i128::from(raw as i64)
    } else {
        i128::from(raw)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> SiteInfo {
        SiteInfo {
            object: Arc::from(Path::new("/bin/x")),
            provider: Arc::from("p"),
            name: Arc::from("n"),
            pc: 0x1000,
            args: Arc::from(vec![
                Some(ArgShape {
                    size: 4,
                    signed: true,
                    float: false,
                }),
                Some(ArgShape {
                    size: 8,
                    signed: false,
                    float: false,
                }),
                Some(ArgShape {
                    size: 8,
                    signed: false,
                    float: false,
                }),
            ]),
            unreadable: Vec::new(),
        }
    }

    /// A record laid out as recorder.bpf.c writes it.
    fn record(
        vals: &[i64],
        err_mask: u16,
        strs: &[(u8, u8, i32, &[u8])],
        str_len: usize,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(7u64.to_ne_bytes());
        b.extend(0x1234u64.to_ne_bytes());
        b.extend(10u32.to_ne_bytes());
        b.extend(11u32.to_ne_bytes());
        b.extend((vals.len() as i32).to_ne_bytes());
        b.extend(err_mask.to_ne_bytes());
        b.push(vals.len() as u8);
        b.push(strs.len() as u8);
        for v in vals {
            b.extend(v.to_ne_bytes());
        }
        for (arg, flags, len, data) in strs {
            b.push(*arg);
            b.push(*flags);
            b.extend([0, 0]);
            b.extend(len.to_ne_bytes());
            let mut slot = data.to_vec();
            slot.resize(str_len, 0);
            b.extend(slot);
        }
        b
    }

    #[test]
    fn values_errors_and_strings() {
        let b = record(
            &[-5, -14, 0x5000],
            0b010,
            &[(2, STR_CUT, 7, b"abcdefg"), (0, STR_FAILED, -14, b"")],
            8,
        );
        let h = header(&b, 8).unwrap();
        let mut hit = Hit::default();
        fill(&mut hit, &b, &h, &site(), 8);
        assert_eq!((hit.pid, hit.tid, hit.ip, hit.cookie), (10, 11, 0x1234, 7));
        assert_eq!(hit.args[0], ArgValue::Int(-5));
        assert!(matches!(&hit.args[1], ArgValue::Error(e) if e.contains("Bad address")));
        assert_eq!(hit.args[2], ArgValue::Int(0x5000));
        assert_eq!(hit.strings[0].bytes, b"abcdefg");
        assert!(hit.strings[0].cut);
        assert_eq!(hit.strings[1].errno, Some(14));
        assert!(hit.strings[1].error().unwrap().contains("Bad address"));
    }

    #[test]
    fn short_records_are_refused() {
        let b = record(&[1, 2], 0, &[(0, 0, 1, b"a")], 16);
        assert!(header(&b, 16).is_some());
        assert!(header(&b[..b.len() - 1], 16).is_none());
        assert!(header(&b, 24).is_none());
        assert!(header(&b[..HDR - 1], 16).is_none());
    }
}

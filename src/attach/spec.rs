//! libbpf's BPF-side USDT spec (`struct __bpf_usdt_spec` in `usdt.bpf.h`), encoded byte for
//! byte in either of its two layouts and either byte order.
//!
//! | field | libbpf <= 1.6 | libbpf >= 1.7 |
//! |---|---|---|
//! | `u64 val_off` | 0 | 0 |
//! | `arg_type` | u32 at 8 | 8 bits at byte 8 |
//! | `idx_reg_off` (12 bits), `scale_bitshift` (4 bits) | - | one u16 at byte 10 |
//! | `short reg_off` | 12 | 14 |
//! | `bool arg_signed` | 14 | 16 |
//! | `char arg_bitshift` | 15 | 17 |
//! | arg spec size | 16 | 24 |
//! | `u64 usdt_cookie`, `short arg_cnt`, spec size | 192, 200, 208 | 288, 296, 304 |

/// Most arguments a spec holds (`BPF_USDT_MAX_ARG_CNT`).
pub const MAX_ARGS: usize = 12;

/// How the BPF side reads one argument (`enum __bpf_usdt_arg_type`, plus one value that
/// libbpf's `bpf_usdt_arg()` answers with `-EINVAL`: an argument that cannot be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum ArgType {
    /// `BPF_USDT_ARG_CONST`: `val_off` is the value.
    Const,
    /// `BPF_USDT_ARG_REG`: read `pt_regs` at `reg_off`.
    Reg,
    /// `BPF_USDT_ARG_REG_DEREF`: read user memory at register + `val_off`.
    RegDeref,
    /// `BPF_USDT_ARG_SIB` (libbpf >= 1.7): base + (index << shift) + `val_off`.
    Sib,
    /// An argument no spec can express: `bpf_usdt_arg()` returns `-EINVAL` for it.
    Unreadable,
}

impl ArgType {
    fn code(self) -> u32 {
        match self {
            ArgType::Const => 0,
            ArgType::Reg => 1,
            ArgType::RegDeref => 2,
            ArgType::Sib => 3,
            // Any value outside the enum reaches usdt.bpf.h's `default: return -EINVAL`.
            ArgType::Unreadable => 0xff,
        }
    }
}

/// One argument as the BPF side reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ArgEncoding {
    /// How to read it.
    pub arg_type: ArgType,
    /// Constant value, or displacement added to the address.
    pub val_off: u64,
    /// Byte offset of the (base) register in `struct pt_regs`.
    pub reg_off: i16,
    /// Byte offset of the index register (SIB only; 12 bits).
    pub idx_reg_off: u16,
    /// log2 of the index scale (SIB only; 4 bits).
    pub scale_bitshift: u8,
    /// Sign-extend the value.
    pub signed: bool,
    /// `64 - 8 * size`.
    pub bitshift: u8,
}

/// Which `struct __bpf_usdt_spec` a BPF object was built with, told by the spec map's value
/// size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum Layout {
    /// libbpf up to 1.6: 16-byte arg specs, 208-byte spec; no SIB.
    V1,
    /// libbpf 1.7 and later: 24-byte arg specs, 304-byte spec.
    V2,
}

impl Layout {
    /// The layout whose spec is `value_size` bytes.
    pub fn from_value_size(value_size: u32) -> Option<Layout> {
        match value_size {
            208 => Some(Layout::V1),
            304 => Some(Layout::V2),
            _ => None,
        }
    }

    /// Size of a whole spec.
    pub fn spec_size(self) -> usize {
        match self {
            Layout::V1 => 208,
            Layout::V2 => 304,
        }
    }

    fn arg_size(self) -> usize {
        match self {
            Layout::V1 => 16,
            Layout::V2 => 24,
        }
    }

    /// Whether the layout has `BPF_USDT_ARG_SIB`.
    pub fn has_sib(self) -> bool {
        self == Layout::V2
    }
}

/// Encode a spec: the arguments, the user's cookie, in `layout` and the given byte order.
///
/// Panics if more than [`MAX_ARGS`] arguments are given (callers check first), or if a SIB
/// argument is encoded in the V1 layout.
pub fn encode(layout: Layout, big_endian: bool, args: &[ArgEncoding], cookie: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(layout.spec_size());
    encode_into(layout, big_endian, args, cookie, &mut b);
    b
}

/// [`encode`], appending the spec to `out` (many specs back to back in one buffer, as a
/// batched map update takes them).
pub fn encode_into(
    layout: Layout,
    big_endian: bool,
    args: &[ArgEncoding],
    cookie: u64,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.resize(start + layout.spec_size(), 0);
    fields(layout, big_endian, args, cookie, &mut out[start..]);
}

/// [`encode`], writing the spec over `out` (exactly one spec long), stale bytes and all.
pub(crate) fn encode_to(
    layout: Layout,
    big_endian: bool,
    args: &[ArgEncoding],
    cookie: u64,
    out: &mut [u8],
) {
    assert_eq!(out.len(), layout.spec_size(), "one spec's room");
    out.fill(0);
    fields(layout, big_endian, args, cookie, out);
}

/// Write the fields of a spec into `b`, zeroed and one spec long.
fn fields(layout: Layout, big_endian: bool, args: &[ArgEncoding], cookie: u64, b: &mut [u8]) {
    assert!(args.len() <= MAX_ARGS, "at most {MAX_ARGS} arguments");
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u64b = |v: u64| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    for (i, a) in args.iter().enumerate() {
        let o = i * layout.arg_size();
        b[o..o + 8].copy_from_slice(&u64b(a.val_off));
        match layout {
            Layout::V1 => {
                assert!(
                    a.arg_type != ArgType::Sib,
                    "SIB needs the libbpf 1.7 layout"
                );
                b[o + 8..o + 12].copy_from_slice(&u32b(a.arg_type.code()));
                b[o + 12..o + 14].copy_from_slice(&u16b(a.reg_off as u16));
                b[o + 14] = a.signed.into();
                b[o + 15] = a.bitshift;
            }
            Layout::V2 => {
                // Little-endian: arg_type in byte 8; idx_reg_off (12 bits) and
                // scale_bitshift (4 bits) share the u16 at byte 10 (a u16 bitfield cannot
                // straddle bit 80), idx_reg_off in the low bits; the reserved byte is 12.
                // Big-endian declares them in reverse and allocates from the most
                // significant bit: reserved in byte 8, the u16 at byte 10 with idx_reg_off
                // in its high bits, arg_type in byte 12.
                let idx = a.idx_reg_off & 0xfff;
                let scale = u16::from(a.scale_bitshift & 0xf);
                if big_endian {
                    b[o + 8] = 0;
                    b[o + 10..o + 12].copy_from_slice(&((idx << 4) | scale).to_be_bytes());
                    b[o + 12] = a.arg_type.code() as u8;
                } else {
                    b[o + 8] = a.arg_type.code() as u8;
                    b[o + 10..o + 12].copy_from_slice(&(idx | (scale << 12)).to_le_bytes());
                }
                b[o + 14..o + 16].copy_from_slice(&u16b(a.reg_off as u16));
                b[o + 16] = a.signed.into();
                b[o + 17] = a.bitshift;
            }
        }
    }
    let tail = MAX_ARGS * layout.arg_size();
    b[tail..tail + 8].copy_from_slice(&u64b(cookie));
    b[tail + 8..tail + 10].copy_from_slice(&u16b(args.len() as u16));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(off: i16, size: u8, signed: bool) -> ArgEncoding {
        ArgEncoding {
            arg_type: ArgType::Reg,
            val_off: 0,
            reg_off: off,
            idx_reg_off: 0,
            scale_bitshift: 0,
            signed,
            bitshift: 64 - 8 * size,
        }
    }

    #[test]
    fn v2_little_endian_offsets() {
        let sib = ArgEncoding {
            arg_type: ArgType::Sib,
            val_off: (-20i64) as u64,
            reg_off: 32,
            idx_reg_off: 80,
            scale_bitshift: 2,
            signed: true,
            bitshift: 32,
        };
        let b = encode(Layout::V2, false, &[reg(80, 4, true), sib], 0xdead_beef);
        assert_eq!(b.len(), 304);
        assert_eq!(&b[0..8], &[0; 8]);
        assert_eq!(b[8], 1, "arg_type REG");
        assert_eq!(&b[14..16], &80u16.to_le_bytes(), "reg_off at 14");
        assert_eq!((b[16], b[17]), (1, 32), "signed at 16, bitshift at 17");
        let s = 24;
        assert_eq!(&b[s..s + 8], &(-20i64).to_le_bytes());
        assert_eq!(b[s + 8], 3, "SIB");
        assert_eq!(u16::from_le_bytes([b[s + 10], b[s + 11]]), 80 | (2 << 12));
        assert_eq!(&b[288..296], &0xdead_beefu64.to_le_bytes(), "cookie at 288");
        assert_eq!(&b[296..298], &2u16.to_le_bytes(), "arg_cnt at 296");
    }

    #[test]
    fn v1_little_endian_offsets() {
        let b = encode(Layout::V1, false, &[reg(112, 8, false)], 7);
        assert_eq!(b.len(), 208);
        assert_eq!(&b[8..12], &1u32.to_le_bytes(), "u32 arg_type at 8");
        assert_eq!(&b[12..14], &112u16.to_le_bytes(), "reg_off at 12");
        assert_eq!((b[14], b[15]), (0, 0));
        assert_eq!(&b[192..200], &7u64.to_le_bytes());
        assert_eq!(&b[200..202], &1u16.to_le_bytes());
    }

    #[test]
    fn unreadable_args_fall_outside_the_enum() {
        let mut a = reg(0, 8, false);
        a.arg_type = ArgType::Unreadable;
        assert_eq!(encode(Layout::V2, false, &[a], 0)[8], 0xff);
        assert_eq!(
            &encode(Layout::V1, false, &[a], 0)[8..12],
            &0xffu32.to_le_bytes()
        );
    }

    #[test]
    fn big_endian_reverses_bitfields() {
        let a = ArgEncoding {
            arg_type: ArgType::Sib,
            val_off: 0,
            reg_off: 16,
            idx_reg_off: 0x123,
            scale_bitshift: 3,
            signed: false,
            bitshift: 0,
        };
        let b = encode(Layout::V2, true, &[a], 1);
        assert_eq!(b[8], 0, "reserved byte first");
        assert_eq!(u16::from_be_bytes([b[10], b[11]]), (0x123 << 4) | 3);
        assert_eq!(b[12], 3, "arg_type after the u16");
        assert_eq!(&b[14..16], &16u16.to_be_bytes());
        assert_eq!(&b[288..296], &1u64.to_be_bytes());
    }

    #[test]
    fn layouts_from_map_value_size() {
        assert_eq!(Layout::from_value_size(208), Some(Layout::V1));
        assert_eq!(Layout::from_value_size(304), Some(Layout::V2));
        assert_eq!(Layout::from_value_size(100), None);
    }
}

/// The libbpf 1.7 layout checked against the one clang gave the recorder's own BPF object:
/// the skeleton's types come from that object's BTF.
#[cfg(all(test, feature = "recorder"))]
mod btf_layout {
    use std::mem::{offset_of, size_of};

    use crate::recorder::skel::types::{__bpf_usdt_arg_spec, __bpf_usdt_spec};

    #[test]
    fn v2_matches_the_compiled_struct() {
        assert_eq!(size_of::<__bpf_usdt_spec>(), super::Layout::V2.spec_size());
        assert_eq!(size_of::<__bpf_usdt_arg_spec>(), 24);
        assert_eq!(offset_of!(__bpf_usdt_arg_spec, val_off), 0);
        assert_eq!(offset_of!(__bpf_usdt_arg_spec, reg_off), 14);
        assert_eq!(offset_of!(__bpf_usdt_arg_spec, arg_signed), 16);
        assert_eq!(offset_of!(__bpf_usdt_arg_spec, arg_bitshift), 17);
        assert_eq!(offset_of!(__bpf_usdt_spec, usdt_cookie), 288);
        assert_eq!(offset_of!(__bpf_usdt_spec, arg_cnt), 296);
    }
}

//! NUL-terminated ASCII fields found in one scan, turned into `&str` without a second
//! validation pass: the scan that finds the NULs also proves every byte before them is ASCII.
//! Anything else (a missing NUL, a byte over 0x7f) is left to the caller's checked path.
//!
//! x86-64 scans sixteen bytes at a time with SSE2 (part of every x86-64 CPU): one compare
//! gives the NULs of a block and one mask its high bits. Other targets scan eight bytes at a
//! time in a `u64`. Both are tested against a byte-by-byte split on x86-64.

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each zero byte of `w`, exactly: `(b & 0x7f) + 0x7f` cannot carry into the
/// next byte, so no byte's answer depends on its neighbours.
fn zero_bytes(w: u64) -> u64 {
    !(((w & LOW7).wrapping_add(LOW7)) | w) & HIGH
}

/// The text of `b` before its `N`-th NUL and the offsets of its first `N` NULs, when `b` has
/// `N` NULs and every byte before the last of them is ASCII; `None` otherwise.
pub(crate) fn ascii_fields<const N: usize>(b: &[u8]) -> Option<(&str, [usize; N])> {
    #[cfg(target_arch = "x86_64")]
    return ascii_fields_sse2(b);
    #[cfg(not(target_arch = "x86_64"))]
    return ascii_fields_words(b);
}

/// The answer once the `N`-th NUL is at `ends[N - 1]` and every byte before it is ASCII.
fn fields_of<const N: usize>(b: &[u8], ends: [usize; N]) -> Option<(&str, [usize; N])> {
    let text = &b[..ends[N - 1]];
    // SAFETY: the callers checked every byte of `text` (those before the N-th NUL) to be below
    // 0x80, and ASCII bytes are valid UTF-8 on their own.
    let text = unsafe { std::str::from_utf8_unchecked(text) };
    Some((text, ends))
}

/// The bytes of `b` from `at` on, one at a time (the tail shorter than a block).
fn scan_tail<const N: usize>(
    b: &[u8],
    mut at: usize,
    mut ends: [usize; N],
    mut found: usize,
) -> Option<(&str, [usize; N])> {
    while let Some(&byte) = b.get(at) {
        if byte == 0 {
            ends[found] = at;
            found += 1;
            if found == N {
                return fields_of(b, ends);
            }
        } else if byte >= 0x80 {
            return None;
        }
        at += 1;
    }
    None
}

/// [`ascii_fields`] sixteen bytes at a time with SSE2. The last block is the last sixteen
/// bytes of `b`, overlapping the one before it (its bytes already scanned are masked off),
/// so a note's tail costs one block, not a byte loop.
#[cfg(target_arch = "x86_64")]
fn ascii_fields_sse2<const N: usize>(b: &[u8]) -> Option<(&str, [usize; N])> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_setzero_si128,
    };
    if b.len() < 16 {
        return scan_tail(b, 0, [0; N], 0);
    }
    let mut ends = [0usize; N];
    let mut found = 0;
    // `at`: the first byte not yet scanned; `block`: where the block read starts.
    let mut at = 0;
    while at < b.len() {
        let block = at.min(b.len() - 16);
        // Bit k of each mask is byte k of the block: a NUL, or a byte with its high bit set.
        // SAFETY: `block + 16 <= b.len()`, so the sixteen bytes read are inside `b`;
        // `_mm_loadu_si128` has no alignment requirement, and SSE2, which all four
        // intrinsics need, is part of the x86-64 baseline every x86-64 target enables.
        let (zeros, high) = unsafe {
            let v = _mm_loadu_si128(b.as_ptr().add(block).cast::<__m128i>());
            let zeros = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()));
            (zeros as u32, _mm_movemask_epi8(v) as u32)
        };
        // Bytes before `at` (only in an overlapping last block) were scanned already.
        let fresh = !0u32 << (at - block);
        let (mut zeros, high) = (zeros & fresh, high & fresh);
        while zeros != 0 {
            let k = zeros.trailing_zeros();
            ends[found] = block + k as usize;
            found += 1;
            if found == N {
                // Only the bytes before this NUL count.
                return (high & ((1u32 << k) - 1) == 0)
                    .then(|| fields_of(b, ends))
                    .flatten();
            }
            zeros &= zeros - 1;
        }
        if high != 0 {
            return None;
        }
        at = block + 16;
    }
    None
}

/// [`ascii_fields`] eight bytes at a time in a `u64`.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn ascii_fields_words<const N: usize>(b: &[u8]) -> Option<(&str, [usize; N])> {
    let mut ends = [0usize; N];
    let mut found = 0;
    let mut high = 0u64;
    let mut at = 0;
    for chunk in b.chunks_exact(8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        let mut zeros = zero_bytes(w);
        while zeros != 0 {
            let k = zeros.trailing_zeros() as usize / 8;
            ends[found] = at + k;
            found += 1;
            if found == N {
                // Only the bytes before the last NUL count (k < 8: the shift is in range).
                high |= w & ((1u64 << (8 * k)) - 1);
                return (high & HIGH == 0).then(|| fields_of(b, ends)).flatten();
            }
            zeros &= zeros - 1;
        }
        high |= w;
        at += 8;
    }
    if high & HIGH != 0 {
        return None;
    }
    scan_tail(b, at, ends, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of an answer, and the offset after the last NUL.
    fn fields<const N: usize>((text, ends): (&str, [usize; N])) -> ([String; N], usize) {
        let mut start = 0;
        let out = ends.map(|e| {
            let f = text[start..e].to_string();
            start = e + 1;
            f
        });
        (out, ends[N - 1] + 1)
    }

    /// The same answer by the obvious method.
    fn slow<const N: usize>(b: &[u8]) -> Option<([String; N], usize)> {
        let mut parts = b.split(|&c| c == 0);
        let mut out: [String; N] = std::array::from_fn(|_| String::new());
        let mut end = 0;
        for field in out.iter_mut() {
            let p = parts.next()?;
            if end + p.len() >= b.len() {
                return None; // no NUL after this part
            }
            *field = std::str::from_utf8(p)
                .ok()
                .filter(|s| s.is_ascii())?
                .to_string();
            end += p.len() + 1;
        }
        Some((out, end))
    }

    /// Every implementation compiled here gives the byte-by-byte answer for `b`.
    fn check<const N: usize>(b: &[u8]) {
        let want = slow::<N>(b);
        assert_eq!(ascii_fields::<N>(b).map(fields), want, "{b:?}");
        assert_eq!(ascii_fields_words::<N>(b).map(fields), want, "words: {b:?}");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(ascii_fields_sse2::<N>(b).map(fields), want, "sse2: {b:?}");
    }

    #[test]
    fn agrees_with_a_byte_by_byte_split() {
        let samples: &[&[u8]] = &[
            b"",
            b"\0\0\0",
            b"a\0b\0c\0",
            b"a\0b\0c",
            b"provider\0name\0-4@%eax 8@-20(%rbp,%rax,4)\0\0",
            b"pr\x80\0n\0a\0",
            b"p\0n\0\xff\0",
            b"p\0n\0args\0\xff\xfe trailing bytes are not checked",
            b"12345678\x0012345678\x001234567\0",
            b"\x01\x01\x01\x01\x01\x01\x01\0\x01\0\x01\0",
            b"\0\x01\0\x01\x01\0",
        ];
        for s in samples {
            check::<3>(s);
        }
        // Every split point of a long-enough buffer, with a non-ASCII byte at every place.
        let base = b"abcdefghijklmnopqrstuvwxyz0123456789ABCD".to_vec();
        for i in 0..base.len() {
            for j in i + 1..base.len() {
                for bad in [None, Some(0), Some(i), Some(j), Some(base.len() - 1)] {
                    let mut b = base.clone();
                    b[i] = 0;
                    b[j] = 0;
                    if let Some(x) = bad {
                        if b[x] != 0 {
                            b[x] = 0xc3;
                        }
                    }
                    check::<2>(&b);
                }
            }
        }
    }
}

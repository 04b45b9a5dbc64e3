//! NUL-terminated ASCII fields read eight bytes at a time, turned into `&str` without a second
//! validation pass: the scan that finds the NULs also proves every byte before them is ASCII.
//! Anything else (a missing NUL, a byte over 0x7f) is left to the caller's checked path.

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
    let mut ends = [0usize; N];
    let mut found = 0;
    let mut high = 0u64;
    let mut words = b.chunks_exact(8);
    let mut at = 0;
    'scan: {
        for chunk in words.by_ref() {
            let w = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
            let mut zeros = zero_bytes(w);
            while zeros != 0 {
                let k = zeros.trailing_zeros() as usize / 8;
                ends[found] = at + k;
                found += 1;
                if found == N {
                    // Only the bytes before the last NUL count (k < 8: the shift is in range).
                    high |= w & ((1u64 << (8 * k)) - 1);
                    break 'scan;
                }
                zeros &= zeros - 1;
            }
            high |= w;
            at += 8;
        }
        for (k, &byte) in words.remainder().iter().enumerate() {
            if byte == 0 {
                ends[found] = at + k;
                found += 1;
                if found == N {
                    break 'scan;
                }
            }
            high |= u64::from(byte);
        }
        return None;
    }
    if high & HIGH != 0 {
        return None;
    }
    let end = ends[N - 1];
    let text = &b[..end];
    // SAFETY: every byte of `text` was checked above to be below 0x80 (the `high` mask of each
    // word, or each byte of the tail), and ASCII bytes are valid UTF-8 on their own.
    let text = unsafe { std::str::from_utf8_unchecked(text) };
    Some((text, ends))
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
            let fast = ascii_fields::<3>(s).map(fields);
            assert_eq!(fast, slow::<3>(s), "{s:?}");
        }
        // Every split point of a long-enough buffer, with a non-ASCII byte at every place.
        let base = b"abcdefghijklmnopqrstuvwx".to_vec();
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
                    let fast = ascii_fields::<2>(&b).map(fields);
                    assert_eq!(fast, slow::<2>(&b), "{b:?}");
                }
            }
        }
    }
}

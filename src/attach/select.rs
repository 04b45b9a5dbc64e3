//! Which probes an attach takes: selectors (`provider:name` patterns with `*`) and the
//! probes of a file they match, in attach order.

use crate::probe::UsdtFile;

/// Which probes to attach, with the cookie the BPF side reads back with `bpf_usdt_cookie()`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ProbeSelector {
    /// Provider, or a pattern with `*`.
    pub provider: String,
    /// Probe name, or a pattern with `*`.
    pub name: String,
    /// The user cookie for every site this selector matches.
    pub cookie: u64,
}

impl ProbeSelector {
    /// A selector for `provider:name` (each may contain `*`).
    pub fn new(provider: &str, name: &str, cookie: u64) -> Self {
        ProbeSelector {
            provider: provider.into(),
            name: name.into(),
            cookie,
        }
    }

    /// Whether the selector takes the probe `provider:name`.
    pub fn matches(&self, provider: &str, name: &str) -> bool {
        glob(&self.provider, provider) && glob(&self.name, name)
    }
}

/// The probes of `usdt` an attach with `selectors` takes, in attach order, each with the
/// first selector that takes it and its sites' indexes in [`UsdtFile::sites`]. Whatever
/// must line up with an attach's sites (the recorder's records) is built from this too.
pub(crate) fn selected<'u, 'd>(
    usdt: &'u UsdtFile<'d>,
    selectors: &'u [ProbeSelector],
) -> impl Iterator<Item = (&'u ProbeSelector, &'d str, &'d str, &'u [u32])> + 'u {
    usdt.probes_indexed()
        .filter_map(move |(provider, name, sites)| {
            let sel = selectors.iter().find(|s| s.matches(provider, name))?;
            Some((sel, provider, name, sites))
        })
}

/// `*` matches any run of characters; everything else matches itself.
///
/// Linear in the pattern and the text: the pieces between stars are found left to right,
/// each at its first place after the previous one (with `*` the only wildcard, the first
/// place is always as good as any later one), the first piece anchored at the start and
/// the last at the end.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let mut middle: Vec<&str> = pieces.collect();
    let Some(last) = middle.pop() else {
        return rest.is_empty(); // no star at all
    };
    for piece in middle {
        match memchr::memmem::find(rest.as_bytes(), piece.as_bytes()) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("python", "python"));
        assert!(glob("*", "anything"));
        assert!(glob("function__*", "function__entry"));
        assert!(glob("*__entry", "function__entry"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b", "ac"));
        assert!(!glob("python", "python3"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("a*a", "aa"));
        assert!(!glob("a*a", "a"));
        assert!(glob("**", ""));
        assert!(glob("*é*", "café"));
    }

    /// The plain backtracking definition.
    fn reference(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn glob_matches_reference(p in "[ab*]{0,8}", t in "[ab]{0,10}") {
            proptest::prop_assert_eq!(glob(&p, &t), reference(p.as_bytes(), t.as_bytes()));
        }
    }

    #[test]
    fn many_stars_answer_at_once() {
        let pattern = "*a".repeat(64) + "*b";
        let text = "a".repeat(10_000);
        let t = std::time::Instant::now();
        assert!(!glob(&pattern, &text));
        assert!(glob(&pattern, &(text + "b")));
        // Exponential matching would take longer than the age of the universe here.
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }
}

//! What the recorder keeps of each attached site to read its hits: the file, probe and
//! address, and the shape of each argument (size, sign, float).

use std::path::Path;
use std::sync::Arc;

use super::MAX_ARGS;
use crate::arg::{Arg, ArgList};
use crate::attach::Attaching;

#[derive(Debug, Clone)]
pub(crate) struct SiteInfo {
    // Shared by every site of a file (or probe): one allocation, not one per site.
    pub(crate) object: Arc<Path>,
    pub(crate) provider: Arc<str>,
    pub(crate) name: Arc<str>,
    pub(crate) pc: u64,
    pub(crate) args: SiteArgs,
    pub(crate) unreadable: Vec<(usize, String)>,
}

pub(crate) use crate::attach::ArgShape;

/// A site's arguments (`None`: not decoded), shared by the sites attached together that
/// have the same argument list.
pub(crate) type SiteArgs = Arc<[Option<ArgShape>]>;

/// What the recorder keeps of an attach: a record per site (in the attach's order), the
/// string-argument mask of each site that has one (by cookie), and what it warns of.
pub(super) struct Records {
    pub(super) infos: Vec<SiteInfo>,
    pub(super) masks: Vec<(u64, u32)>,
    pub(super) warnings: Vec<String>,
}

/// The recorder's records of the sites of `attached`, built while the kernel makes the link.
/// `mask` gives a probe's string-argument mask (asked once per run of sites of one probe).
pub(super) fn records(
    attached: &Attaching<'_>,
    object: &Arc<Path>,
    mask: impl Fn(&str, &str) -> u32,
) -> Records {
    let mut shared: foldhash::HashMap<&[Option<ArgShape>], SiteArgs> = Default::default();
    let mut given: foldhash::HashSet<String> = Default::default();
    let mut out = Records {
        infos: Vec::with_capacity(attached.sites.len()),
        masks: Vec::new(),
        warnings: Vec::new(),
    };
    let mut probe_mask: Option<(&Arc<str>, &Arc<str>, u32)> = None;
    for (i, s) in attached.sites.iter().enumerate() {
        let shapes = attached.shapes(i);
        let args = shared.entry(shapes).or_insert_with(|| shapes.into());
        let m = match probe_mask {
            Some((p, n, m)) if Arc::ptr_eq(p, &s.provider) && Arc::ptr_eq(n, &s.name) => m,
            _ => {
                let m = mask(&s.provider, &s.name);
                probe_mask = Some((&s.provider, &s.name, m));
                m
            }
        };
        // A string asked of an argument the site does not have is said, not dropped.
        for a in (shapes.len()..MAX_ARGS).filter(|a| m & (1 << a) != 0) {
            let w = format!(
                "{}: probe {}:{} has {} arguments: no string for argument {a}",
                object.display(),
                s.provider,
                s.name,
                shapes.len()
            );
            if given.insert(w.clone()) {
                out.warnings.push(w);
            }
        }
        if m != 0 {
            out.masks.push((s.cookie, m));
        }
        out.infos.push(SiteInfo {
            object: Arc::clone(object),
            provider: Arc::clone(&s.provider),
            name: Arc::clone(&s.name),
            pc: s.pc,
            args: Arc::clone(args),
            unreadable: s
                .unreadable
                .iter()
                .map(|(i, why)| (*i, why.to_string()))
                .collect(),
        });
    }
    out
}

/// The arguments of each list of `lists`, in order; a list that several sites share (a
/// file's sites with one argument string share one slice) is converted once.
pub(super) fn share_args<'a, 'd: 'a>(
    lists: impl Iterator<Item = &'a ArgList<'d>>,
) -> Vec<SiteArgs> {
    let mut seen: foldhash::HashMap<*const Arg<'d>, SiteArgs> = Default::default();
    lists
        .map(|list| {
            let args = seen.entry(list.as_ptr()).or_insert_with(|| {
                list.iter()
                    .map(|a| a.decoded.as_ref().ok().map(ArgShape::from))
                    .collect()
            });
            Arc::clone(args)
        })
        .collect()
}

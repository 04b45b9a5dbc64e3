//! What the recorder keeps of each attached site to read its hits: the file, probe and
//! address, and the shape of each argument (size, sign, float).

use std::path::Path;
use std::sync::Arc;

use crate::arg::{Arg, ArgList, ArgSpec};
use crate::attach::ProbeSelector;

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

/// What reading a hit's argument needs of its spec (`bpf_usdt_arg()` did the rest).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArgShape {
    pub(crate) size: u32,
    pub(crate) signed: bool,
    pub(crate) float: bool,
}

impl From<&ArgSpec> for ArgShape {
    fn from(s: &ArgSpec) -> Self {
        ArgShape {
            size: s.size,
            signed: s.signed,
            float: s.float,
        }
    }
}

/// A site's arguments (`None`: not decoded), shared by the sites attached together that
/// have the same argument list.
pub(crate) type SiteArgs = Arc<[Option<ArgShape>]>;

/// The recorder's record of every site an attach with `selectors` takes, in its order.
pub(super) fn site_infos(
    usdt: &crate::UsdtFile<'_>,
    selectors: &[ProbeSelector],
    object: &Arc<Path>,
) -> Vec<SiteInfo> {
    let all = usdt.sites();
    let mut lists = Vec::new();
    let mut names = Vec::new();
    for (_, provider, name, indexes) in crate::attach::selected(usdt, selectors) {
        let (provider, name): (Arc<str>, Arc<str>) = (provider.into(), name.into());
        for &i in indexes {
            let site = &all[i as usize];
            lists.push(&site.args);
            names.push((Arc::clone(&provider), Arc::clone(&name), site.pc));
        }
    }
    share_args(lists.into_iter())
        .into_iter()
        .zip(names)
        .map(|(args, (provider, name, pc))| SiteInfo {
            object: Arc::clone(object),
            provider,
            name,
            pc,
            args,
            unreadable: Vec::new(),
        })
        .collect()
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

//! Which datasets an HDF5 file holds, in Caterva2 0.2.0's order (h5py's `visititems`: by
//! name, depth first, each object once through its hard links, so no cycles). A soft link
//! inside the file names an object that has a hard link too: that object is listed once, under
//! its own path. External links may point anywhere: they are logged, never followed (nor are
//! soft links, which could lead through one).

use std::collections::HashSet;

use hdf5::{Group, IndexType, IterationOrder, LinkType, LocationType};

/// Deepest group nesting walked.
const MAX_DEPTH: usize = 64;

/// What a file holds: paths inside it (no leading `/`), in walk order.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub(crate) datasets: Vec<String>,
    pub(crate) groups: Vec<String>,
}

struct Walk {
    seen: HashSet<String>,
    found: Vec<String>,
    groups: Vec<String>,
    soft: Vec<String>,
}

/// Every dataset and group of `root` (the file's root group), by path.
pub(crate) fn tree(root: &Group) -> Tree {
    let mut w = Walk {
        seen: HashSet::new(),
        found: Vec::new(),
        groups: Vec::new(),
        soft: Vec::new(),
    };
    if let Ok(info) = root.loc_info() {
        w.seen.insert(format!("{:?}", info.token));
    }
    w.group(root, "", 0);
    for link in &w.soft {
        tracing::debug!(%link, "soft link: its target is listed under its own path");
    }
    Tree {
        datasets: w.found,
        groups: w.groups,
    }
}

impl Walk {
    fn group(&mut self, g: &Group, prefix: &str, depth: usize) {
        if depth > MAX_DEPTH {
            tracing::warn!(group = %prefix, "groups nested too deep, not walked further");
            return;
        }
        let mut links = Vec::new();
        let listed = g.iter_visit(IndexType::Name, IterationOrder::Increasing, |name, info| {
            links.push((name.to_owned(), info.link_type));
            Ok(())
        });
        if let Err(e) = listed {
            tracing::warn!(group = %prefix, error = %e, "cannot list group, skipped");
            return;
        }
        for (name, kind) in links {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            match kind {
                LinkType::External => {
                    tracing::warn!(link = %path, "external link not followed (it may point anywhere)");
                }
                LinkType::Soft => self.soft.push(path),
                LinkType::Hard => {
                    let Ok(info) = g.loc_info_by_name(&name) else {
                        tracing::warn!(path = %path, "cannot inspect object, skipped");
                        continue;
                    };
                    if !self.seen.insert(format!("{:?}", info.token)) {
                        continue;
                    }
                    match info.loc_type {
                        LocationType::Dataset => self.found.push(path),
                        LocationType::Group => {
                            if let Ok(sub) = g.group(&name) {
                                self.groups.push(path.clone());
                                self.group(&sub, &path, depth + 1);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

//! Which datasets an HDF5 file holds, in Caterva2 0.2.0's order (h5py's `visititems`: by
//! name, depth first, each object once through its hard links), plus what soft links show.
//!
//! Soft links (with [`Listing::Full`]) are followed once: a soft link to a dataset lists that
//! dataset under the link's path too (NeXus files name their plotted data this way); a soft
//! link to a group lists the group's content under the link's path, the first time a soft
//! link leads to that group (later ones are logged), and never into a group it lies in (no
//! cycles). A link's target is resolved component by component through hard and soft links
//! of this file only: a path that leads through an external link (which may name any file)
//! is not followed, nor is an external link itself. Every dataset is opened by its hard path.

use std::collections::HashSet;

use hdf5::{Group, IndexType, IterationOrder, LinkType, LocationType};

use crate::Listing;
use crate::ffi::{self, Link};

/// Deepest group nesting walked.
const MAX_DEPTH: usize = 64;
/// Most soft links resolved for one link's target (chains of soft links).
const MAX_HOPS: usize = 32;

/// One dataset found: the path it is listed under and its hard path (no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) listed: String,
    pub(crate) hard: String,
}

/// What a file holds, in walk order.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub(crate) datasets: Vec<Found>,
    /// Groups as listed (directories of an imported root).
    pub(crate) groups: Vec<String>,
}

struct Walk<'a> {
    root: &'a Group,
    follow_soft: bool,
    /// Objects met through hard links outside soft-linked groups (0.2.0 lists each once).
    seen: HashSet<String>,
    /// Groups already listed through a soft link.
    expanded: HashSet<String>,
    /// The groups the walk is inside (cycles).
    ancestors: Vec<String>,
    tree: Tree,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

fn token(g: &Group, name: &str) -> Option<(String, LocationType)> {
    let info = g.loc_info_by_name(name).ok()?;
    Some((format!("{:?}", info.token), info.loc_type))
}

/// Every dataset and group of `root` (the file's root group).
pub(crate) fn tree(root: &Group, listing: Listing) -> Tree {
    let mut w = Walk {
        root,
        follow_soft: listing == Listing::Full,
        seen: HashSet::new(),
        expanded: HashSet::new(),
        ancestors: Vec::new(),
        tree: Tree::default(),
    };
    if let Some((t, _)) = token(root, ".") {
        w.seen.insert(t.clone());
        w.ancestors.push(t);
    }
    w.group(root, "", "", false, 0);
    w.tree
}

impl Walk<'_> {
    /// Walks group `g`, listed as `listed`, whose hard path is `hard`; `aliased`: reached
    /// through a soft link (its objects are listed again under the link's path).
    fn group(&mut self, g: &Group, listed: &str, hard: &str, aliased: bool, depth: usize) {
        if depth > MAX_DEPTH {
            tracing::warn!(group = %listed, "groups nested too deep, not walked further");
            return;
        }
        let mut links = Vec::new();
        let names = g.iter_visit(IndexType::Name, IterationOrder::Increasing, |name, info| {
            links.push((name.to_owned(), info.link_type));
            Ok(())
        });
        if let Err(e) = names {
            tracing::warn!(group = %listed, error = %e, "cannot list group, skipped");
            return;
        }
        for (name, kind) in links {
            let path = join(listed, &name);
            match kind {
                LinkType::External => {
                    tracing::warn!(link = %path, "external link not followed (it may point anywhere)");
                }
                LinkType::Soft if !self.follow_soft => {
                    tracing::debug!(link = %path, "soft link not followed (Caterva2 0.2.0 listing)");
                }
                LinkType::Soft => match self.resolve(hard, &name, &mut 0) {
                    Ok(target) => self.target(&path, &target, depth),
                    Err(why) => {
                        tracing::warn!(link = %path, reason = why, "soft link not followed")
                    }
                },
                LinkType::Hard => {
                    let Some((tok, kind)) = token(g, &name) else {
                        tracing::warn!(path = %path, "cannot inspect object, skipped");
                        continue;
                    };
                    if !aliased && !self.seen.insert(tok.clone()) {
                        continue;
                    }
                    let hard_path = join(hard, &name);
                    match kind {
                        LocationType::Dataset => self.tree.datasets.push(Found {
                            listed: path,
                            hard: hard_path,
                        }),
                        LocationType::Group => self.enter(&path, &hard_path, tok, aliased, depth),
                        _ => {}
                    }
                }
            }
        }
    }

    /// Lists group `hard` (token `tok`) as `listed`, unless that would be a cycle.
    fn enter(&mut self, listed: &str, hard: &str, tok: String, aliased: bool, depth: usize) {
        if self.ancestors.contains(&tok) {
            tracing::warn!(group = %listed, "link back into an enclosing group (a cycle), not followed");
            return;
        }
        let Ok(sub) = self.root.group(hard) else {
            tracing::warn!(group = %listed, "cannot open group, skipped");
            return;
        };
        self.tree.groups.push(listed.to_owned());
        self.ancestors.push(tok);
        self.group(&sub, listed, hard, aliased, depth + 1);
        self.ancestors.pop();
    }

    /// What soft link `listed` leads to (hard path `target`).
    fn target(&mut self, listed: &str, target: &str, depth: usize) {
        let at = if target.is_empty() { "." } else { target };
        match token(self.root, at) {
            Some((_, LocationType::Dataset)) => self.tree.datasets.push(Found {
                listed: listed.to_owned(),
                hard: target.to_owned(),
            }),
            Some((tok, LocationType::Group)) => {
                if self.ancestors.contains(&tok) {
                    tracing::warn!(link = %listed, "soft link into an enclosing group (a cycle), not followed");
                } else if !self.expanded.insert(tok.clone()) {
                    tracing::info!(link = %listed, target = %target, "group already listed through another soft link, not listed again");
                } else {
                    self.enter(listed, target, tok, true, depth);
                }
            }
            _ => {
                tracing::warn!(link = %listed, "soft link to something neither a dataset nor a group")
            }
        }
    }

    /// The hard path that soft link `name` of group `base` (a hard path) leads to.
    fn resolve(&self, base: &str, name: &str, hops: &mut usize) -> Result<String, &'static str> {
        let g = self.open(base)?;
        let value = match ffi::link(g.id(), name) {
            Ok(Some(Link::Soft(v))) => v,
            Ok(Some(Link::Hard)) => return Ok(join(base, name)),
            Ok(Some(Link::External)) => return Err("it leads through an external link"),
            Ok(Some(Link::Other)) => return Err("it leads through a user-defined link"),
            Ok(None) => return Err("it dangles"),
            Err(_) => return Err("it cannot be read"),
        };
        *hops += 1;
        if *hops > MAX_HOPS {
            return Err("too many soft links in a row");
        }
        let mut at: Vec<String> = if value.starts_with('/') {
            Vec::new()
        } else {
            base.split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        };
        for c in value.split('/').filter(|c| !c.is_empty() && *c != ".") {
            let here = at.join("/");
            let next = self.resolve(&here, c, hops)?;
            at = next
                .split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Ok(at.join("/"))
    }

    /// Group `hard` (a hard path; empty for the root).
    fn open(&self, hard: &str) -> Result<Group, &'static str> {
        let at = if hard.is_empty() { "." } else { hard };
        self.root
            .group(at)
            .map_err(|_| "it leads through something that is not a group")
    }
}

//! NATS subjects, built here and nowhere else.

use crate::RootName;

/// Prefix of every cat2 subject.
pub const PREFIX: &str = "cat2.v1";

/// Broker: the publishers of `r` register and heartbeat here. The root is in the subject so
/// that NATS permissions can say who may register which root (a responder learns nothing
/// else about a request's sender); the broker refuses a body naming another root.
pub fn broker_register(r: &RootName) -> String {
    format!("{PREFIX}.broker.register.{r}")
}

/// Broker: what it subscribes to for [`broker_register`] (every root).
pub fn broker_register_any() -> String {
    format!("{PREFIX}.broker.register.*")
}

/// The root named by a [`broker_register`] subject.
pub fn registered_root(subject: &str) -> Option<&str> {
    subject
        .strip_prefix(PREFIX)?
        .strip_prefix(".broker.register.")
}

/// Broker: the list of roots.
pub fn broker_roots() -> String {
    format!("{PREFIX}.broker.roots")
}

/// Broker: root announcements (new, online, offline).
pub fn broker_events() -> String {
    format!("{PREFIX}.broker.events")
}

fn root(r: &RootName, verb: &str) -> String {
    format!("{PREFIX}.root.{r}.{verb}")
}

/// Requests a publisher answers (list, info, chunks, blocks); subjects [`root_request`].
pub const ROOT_REQUESTS: [&str; 4] = ["list", "info", "chunks", "blocks"];

/// Request `verb` (one of [`ROOT_REQUESTS`]) of root `r`, or of any root when `r` is `None`
/// (a pattern for subscriptions and permissions).
pub fn root_request(r: Option<&RootName>, verb: &str) -> String {
    match r {
        Some(r) => root(r, verb),
        None => format!("{PREFIX}.root.*.{verb}"),
    }
}

/// Changes of any root (a pattern for permissions).
pub fn any_root_changes() -> String {
    format!("{PREFIX}.root.*.changes")
}

/// State beats of any root (a pattern for permissions).
pub fn any_root_state() -> String {
    format!("{PREFIX}.root.*.state")
}

/// Publisher of `r`: the list of datasets.
pub fn root_list(r: &RootName) -> String {
    root(r, "list")
}

/// Publisher of `r`: a dataset's metadata.
pub fn root_info(r: &RootName) -> String {
    root(r, "info")
}

/// Publisher of `r`: raw chunks of a dataset.
pub fn root_chunks(r: &RootName) -> String {
    root(r, "chunks")
}

/// Publisher of `r`: single blocks of a chunk.
pub fn root_blocks(r: &RootName) -> String {
    root(r, "blocks")
}

/// Publisher of `r`: dataset changes.
pub fn root_changes(r: &RootName) -> String {
    root(r, "changes")
}

/// Publisher of `r`: its change sequence's position, every heartbeat.
pub fn root_state(r: &RootName) -> String {
    root(r, "state")
}

/// The subscriber `id`'s status endpoint.
pub fn subscriber_status(id: &str) -> String {
    format!("{PREFIX}.sub.{id}.status")
}

/// Queue group shared by the publishers of `r`, so that replicas share requests.
pub fn root_queue_group(r: &RootName) -> String {
    format!("cat2-root-{r}")
}

/// Micro-service names (ADR-32: `[A-Za-z0-9_-]`).
pub mod service {
    /// The broker.
    pub const BROKER: &str = "cat2-broker";
    /// A publisher.
    pub const PUBLISHER: &str = "cat2-publisher";
    /// A subscriber.
    pub const SUBSCRIBER: &str = "cat2-subscriber";
}

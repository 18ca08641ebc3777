//! NATS subjects, built here and nowhere else.

use crate::RootName;

/// Prefix of every cat2 subject.
pub const PREFIX: &str = "cat2.v1";

/// Broker: publishers register and heartbeat here.
pub fn broker_register() -> String {
    format!("{PREFIX}.broker.register")
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

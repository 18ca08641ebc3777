//! Test support for cat2.
//!
//! - [`NatsServer`]: a real `nats-server` per test, on a random loopback port, killed on drop.
//! - [`NatsSite`]: a 3-node cluster and a leaf server behind a [`LinkProxy`] that a test can
//!   cut and restore, for tests of remote sites.
//! - [`tools`]: where the project's setup script put nats-server and the Python venv used by
//!   interop tests (`.tools/` at the workspace root), with install hints when they are missing.
//!
//! The harness follows nats.rs' own: start `nats-server -a 127.0.0.1 -p -1 --ports_file_dir
//! DIR`, poll the ports file until it parses, then connect once to check the server speaks.

pub mod tools;

pub mod link;
mod nats;
pub mod site;

pub use link::LinkProxy;
pub use nats::NatsServer;
pub use site::NatsSite;

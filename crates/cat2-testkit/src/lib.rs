//! Test support for cat2.
//!
//! - [`NatsServer`]: a real `nats-server` per test, on a random loopback port, killed on drop.
//! - [`tools`]: where the project's setup script put nats-server and the Python venv used by
//!   interop tests (`.tools/` at the workspace root), with install hints when they are missing.
//!
//! The harness follows nats.rs' own: start `nats-server -a 127.0.0.1 -p -1 --ports_file_dir
//! DIR`, poll the ports file until it parses, then connect once to check the server speaks.

pub mod tools;

mod nats;

pub use nats::NatsServer;

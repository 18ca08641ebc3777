//! Talking to cat2 over NATS: connection options ([`NatsConfig`]), typed requests to the broker
//! and to publishers ([`Client`]), chunk streams reassembled from parts, and the configuration
//! file shared by every program ([`Conf`]).
//!
//! # Layout
//! - `config`: `caterva2.toml` sections (Caterva2's layout plus `[nats]`) and NATS options.
//! - `client`: [`Client`], requests with timeouts, error mapping, chunk reassembly.
//! - `budget`: [`budget::ByteBudget`], the bytes a service's results in flight may take;
//!   `service`: what the services' `main`s share.

pub mod budget;
mod client;
mod config;

pub use client::{ChunkStream, Client, ClientError, Parts, remote_error, service_error};
pub use config::{Conf, ConfError, NatsConfig, parse_count, parse_seconds, parse_size};

pub mod service;

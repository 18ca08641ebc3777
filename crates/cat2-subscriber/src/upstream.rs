//! What the subscriber asks of the world beyond it: the broker's roots, and the list,
//! metadata, chunks and blocks of a root's datasets. [`NatsUpstream`] asks over NATS; tests
//! put an in-memory fake in its place (one that can delay, fail, go silent and count), so the
//! core and the REST API run in-process, with paused time, without a server.
//!
//! The core bounds every call itself (request deadlines, an idle limit between the items of
//! a chunk stream): an implementation may be slow or silent, the subscriber stays correct.

use std::time::Duration;

use cat2_client::{Client, ClientError, Parts};
use cat2_proto::msg::{BlocksRequest, ChunksRequest, Info, List, Roots};
use cat2_proto::{DatasetPath, RootName};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};

/// Complete chunks (or one-block chunks, numbered by block) as they arrive: each item is one
/// requested number with its parts in order. The stream ends once every requested number
/// came, or after its first error.
pub type ChunkItems = BoxStream<'static, Result<(u64, Parts), ClientError>>;

/// The subscriber's view of the broker and of the publishers of its roots.
pub trait Upstream: Send + Sync + std::fmt::Debug + 'static {
    /// The broker's roots.
    fn roots(&self) -> BoxFuture<'_, Result<Roots, ClientError>>;

    /// The datasets of `root`.
    fn list<'a>(&'a self, root: &'a RootName) -> BoxFuture<'a, Result<List, ClientError>>;

    /// The metadata of `path` in `root`, or only its etag when `if_none_match` is current.
    /// An unknown dataset is a `Remote` error with [`cat2_proto::ErrorCode::NotFound`].
    fn info<'a>(
        &'a self,
        root: &'a RootName,
        path: &'a DatasetPath,
        if_none_match: Option<String>,
    ) -> BoxFuture<'a, Result<Info, ClientError>>;

    /// Raw chunks of one dataset version ([`cat2_proto::ErrorCode::Stale`] when the version
    /// asked for is no longer the publisher's).
    fn chunks<'a>(
        &'a self,
        root: &'a RootName,
        req: ChunksRequest,
    ) -> BoxFuture<'a, Result<ChunkItems, ClientError>>;

    /// Single blocks of one chunk, each as a one-block chunk numbered by block.
    fn blocks<'a>(
        &'a self,
        root: &'a RootName,
        req: BlocksRequest,
    ) -> BoxFuture<'a, Result<ChunkItems, ClientError>>;
}

/// [`Upstream`] over a NATS connection: cat2's subjects, served by the broker and by the
/// publishers' queue groups.
#[derive(Debug, Clone)]
pub struct NatsUpstream {
    /// Requests, with the API timeout.
    client: Client,
    /// Chunk and block streams: NATS's own per-message limit, the stream idle limit.
    streams: Client,
}

impl NatsUpstream {
    /// Requests on `nats` wait at most `timeout`; a chunk stream whose publisher stays silent
    /// for `idle` fails (to be asked again, perhaps of another publisher).
    pub fn new(nats: async_nats::Client, timeout: Duration, idle: Duration) -> Self {
        Self {
            client: Client::new(nats.clone(), timeout),
            streams: Client::new(nats, idle.min(timeout)),
        }
    }
}

fn items(s: cat2_client::ChunkStream) -> ChunkItems {
    futures::stream::unfold(
        s,
        |mut s| async move { s.next().await.map(|item| (item, s)) },
    )
    .boxed()
}

impl Upstream for NatsUpstream {
    fn roots(&self) -> BoxFuture<'_, Result<Roots, ClientError>> {
        self.client.roots().boxed()
    }

    fn list<'a>(&'a self, root: &'a RootName) -> BoxFuture<'a, Result<List, ClientError>> {
        self.client.list(root).boxed()
    }

    fn info<'a>(
        &'a self,
        root: &'a RootName,
        path: &'a DatasetPath,
        if_none_match: Option<String>,
    ) -> BoxFuture<'a, Result<Info, ClientError>> {
        self.client.info(root, path, if_none_match).boxed()
    }

    fn chunks<'a>(
        &'a self,
        root: &'a RootName,
        req: ChunksRequest,
    ) -> BoxFuture<'a, Result<ChunkItems, ClientError>> {
        async move { self.streams.chunks(root, req).await.map(items) }.boxed()
    }

    fn blocks<'a>(
        &'a self,
        root: &'a RootName,
        req: BlocksRequest,
    ) -> BoxFuture<'a, Result<ChunkItems, ClientError>> {
        async move { self.streams.blocks(root, req).await.map(items) }.boxed()
    }
}

//! Subscriptions to what publishers announce — changes and heartbeat states — for the roots
//! this subscriber follows, and only those: behind a leaf link, a site then imports the
//! announcements of the roots it uses, not of every root in the data space.

use std::collections::HashMap;

use bytes::Bytes;
use cat2_proto::{RootName, subject};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Announcements kept waiting for the main loop before their readers wait.
const QUEUE: usize = 1024;

/// One announcement.
#[derive(Debug)]
pub(crate) enum Heard {
    /// A `Change` message (still encoded).
    Change(RootName, Bytes),
    /// A `RootState` message (still encoded).
    State(RootName, Bytes),
}

/// The per-root subscriptions, one task each, forwarding into one channel.
#[derive(Debug)]
pub(crate) struct Interest {
    nats: async_nats::Client,
    tx: mpsc::Sender<Heard>,
    roots: HashMap<RootName, JoinHandle<()>>,
}

impl Interest {
    pub(crate) fn new(nats: async_nats::Client) -> (Self, mpsc::Receiver<Heard>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let roots = HashMap::new();
        (Self { nats, tx, roots }, rx)
    }

    /// Subscribes the roots of `followed` not subscribed yet, drops the others. A root whose
    /// subscription fails (NATS away) is tried again at the next call.
    pub(crate) async fn reconcile(&mut self, followed: &[RootName]) {
        self.roots.retain(|root, task| {
            let keep = followed.contains(root) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for root in followed {
            if self.roots.contains_key(root) {
                continue;
            }
            match self.subscribe(root).await {
                Ok(task) => {
                    self.roots.insert(root.clone(), task);
                }
                Err(e) => {
                    tracing::warn!(root = %root, error = %e, "cannot subscribe to a root's changes (tried again shortly)");
                }
            }
        }
    }

    async fn subscribe(
        &self,
        root: &RootName,
    ) -> Result<JoinHandle<()>, async_nats::SubscribeError> {
        let mut changes = self.nats.subscribe(subject::root_changes(root)).await?;
        let mut states = self.nats.subscribe(subject::root_state(root)).await?;
        let (tx, root) = (self.tx.clone(), root.clone());
        Ok(tokio::spawn(async move {
            loop {
                let heard = tokio::select! {
                    Some(m) = changes.next() => Heard::Change(root.clone(), m.payload),
                    Some(m) = states.next() => Heard::State(root.clone(), m.payload),
                    else => return,
                };
                if tx.send(heard).await.is_err() {
                    return;
                }
            }
        }))
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        for task in self.roots.values() {
            task.abort();
        }
    }
}

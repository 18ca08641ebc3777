//! What a publisher tells others without being asked: its changes, numbered per run, and
//! its heartbeat (registration with the broker, and the change sequence's position for
//! subscribers, which is how they notice changes they missed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cat2_proto::msg::{Change, Register, RootState};
use cat2_proto::{RootName, subject};
use tokio_util::sync::CancellationToken;

use crate::{Config, SHUTDOWN_STEP};

/// This run's change numbering (see [`Change`]): subscribers that miss a number, or see the
/// heartbeat's [`RootState`] pass the last number they saw, re-follow the root.
pub(crate) struct Sequence {
    epoch: u64,
    last: AtomicU64,
}

impl Sequence {
    pub(crate) fn new() -> Self {
        // Unique per run: the start time in nanoseconds (a restart is a new epoch).
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self {
            epoch,
            last: AtomicU64::new(0),
        }
    }

    fn number(&self, c: &mut Change) {
        c.epoch = self.epoch;
        c.seq = self.last.fetch_add(1, Ordering::SeqCst) + 1;
    }

    fn state(&self) -> RootState {
        RootState {
            epoch: self.epoch,
            seq: self.last.load(Ordering::SeqCst),
        }
    }
}

pub(crate) async fn announce(
    nats: &async_nats::Client,
    root: &RootName,
    sequence: &Sequence,
    changes: Vec<Change>,
) {
    for mut c in changes {
        sequence.number(&mut c);
        tracing::info!(root = %root, path = %c.path, deleted = c.etag.is_none(), seq = c.seq, "dataset changed");
        if let Err(e) = nats
            .publish(subject::root_changes(root), cat2_proto::encode(&c).into())
            .await
        {
            tracing::warn!(error = %e, "cannot announce a change");
        }
    }
    let _ = tokio::time::timeout(SHUTDOWN_STEP, nats.flush()).await;
}

/// Registers with the broker, then heartbeats at the pace it asks for; every beat also
/// publishes where the change sequence is (to subscribers, whether or not the broker
/// answers).
pub(crate) async fn heartbeat(
    cfg: Config,
    nats: async_nats::Client,
    sequence: Arc<Sequence>,
    registered: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let state_subject = subject::root_state(&cfg.name);
    let client = cat2_client::Client::new(nats.clone(), Duration::from_secs(2));
    let reg = Register {
        root: cfg.name.clone(),
        publisher: cfg.id.clone(),
        http: cfg.http.clone(),
    };
    let mut every = cfg.heartbeat;
    let mut warned = false;
    loop {
        let r = client.register(&reg).await;
        registered.store(r.is_ok(), Ordering::Relaxed);
        match r {
            Ok(r) => {
                if warned {
                    tracing::info!("registered with the broker");
                }
                warned = false;
                every = Duration::from_millis(r.heartbeat_ms.clamp(100, 60_000));
            }
            Err(e) if !warned => {
                tracing::warn!(error = %e, "cannot register with the broker; will keep trying");
                warned = true;
            }
            Err(_) => {}
        }
        let state = cat2_proto::encode(&sequence.state());
        if let Err(e) = nats.publish(state_subject.clone(), state.into()).await {
            tracing::debug!(error = %e, "cannot publish the change sequence's state");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

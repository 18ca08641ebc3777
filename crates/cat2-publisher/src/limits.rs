//! What the publisher takes on at once: chunk and block requests being served, and bytes read
//! for replies that NATS has not sent yet.
//!
//! Without bounds, a burst of requests (many subscribers, or one rogue client) made a task
//! each and queued every chunk it read in the connection's outgoing buffer: memory grew with
//! the burst. Now a request is served when one of `max_requests` slots is free, else it waits
//! for one (at most `queue_wait`, and only as many waiters as slots), else it is answered
//! [`ErrorCode::Busy`](cat2_proto::ErrorCode::Busy) at once: subscribers retry, possibly on
//! another publisher of the queue group. Each chunk read takes room in a byte budget first;
//! the room goes back when NATS has written the last message holding those bytes.

use std::sync::Arc;
use std::time::Duration;

use cat2_client::budget::{ByteBudget, Lease};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Longest a request waits for room in the byte budget before it gives up (busy): a reply
/// stuck this long behind others is better asked again elsewhere.
const ROOM_WAIT: Duration = Duration::from_secs(10);

/// The publisher's bounds, shared by all requests.
#[derive(Debug)]
pub(crate) struct Limits {
    slots: Arc<Semaphore>,
    waiters: Arc<Semaphore>,
    room: ByteBudget,
    queue_wait: Duration,
    /// Requests told [`Busy`] (shown by `/metrics`).
    pub(crate) refused: prometheus_client::metrics::counter::Counter,
}

/// Why a request is not served now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

impl Limits {
    /// At most `max_requests` served at once, `send_bytes` read and not sent yet, waiting
    /// `queue_wait` at most for a slot.
    pub(crate) fn new(max_requests: usize, send_bytes: u64, queue_wait: Duration) -> Self {
        let max_requests = max_requests.max(1);
        Self {
            slots: Arc::new(Semaphore::new(max_requests)),
            waiters: Arc::new(Semaphore::new(max_requests)),
            room: ByteBudget::new(send_bytes),
            queue_wait,
            refused: prometheus_client::metrics::counter::Counter::default(),
        }
    }

    /// A slot for one request, now if free, else after a bounded wait; [`Busy`] when none
    /// comes (or too many are waiting already).
    pub(crate) async fn admit(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        let admitted = async {
            let _waiting = self.waiters.clone().try_acquire_owned().map_err(|_| Busy)?;
            match tokio::time::timeout(self.queue_wait, self.slots.clone().acquire_owned()).await {
                Ok(Ok(p)) => Ok(p),
                _ => Err(Busy),
            }
        };
        let r = admitted.await;
        if r.is_err() {
            self.refused.inc();
        }
        r
    }

    /// Requests being served now.
    pub(crate) fn busy_slots(&self, max_requests: usize) -> usize {
        max_requests
            .max(1)
            .saturating_sub(self.slots.available_permits())
    }

    /// Room for `bytes` about to be read (a read larger than the whole budget takes all of
    /// it); [`Busy`] when it does not come in [`ROOM_WAIT`].
    pub(crate) async fn room(&self, bytes: u64) -> Result<Lease, Busy> {
        let lease = self.room.lease(bytes, ROOM_WAIT).await.ok_or(Busy);
        if lease.is_err() {
            self.refused.inc();
        }
        lease
    }

    /// Room for `bytes` if it is free now (`None` otherwise, not counted as refused): for a
    /// read ahead, which must never wait for room that only its own request's unsent replies
    /// would free.
    pub(crate) async fn room_now(&self, bytes: u64) -> Option<Lease> {
        self.room.lease(bytes, Duration::ZERO).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_past_the_slots_wait_then_are_busy() {
        let l = Limits::new(2, 1 << 20, Duration::from_millis(100));
        let a = l.admit().await.unwrap();
        let _b = l.admit().await.unwrap();
        // Full: the third waits, and gets the slot freed meanwhile.
        let third = async { l.admit().await };
        let free = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(a);
        };
        let (third, ()) = tokio::join!(third, free);
        let _c = third.unwrap();
        // Full again, nobody leaves: busy after the wait.
        let t = tokio::time::Instant::now();
        assert_eq!(l.admit().await.unwrap_err(), Busy);
        assert_eq!(t.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_bounded_too() {
        let l = Arc::new(Limits::new(1, 1 << 20, Duration::from_secs(60)));
        let _a = l.admit().await.unwrap();
        let l2 = l.clone();
        let waiting = tokio::spawn(async move { l2.admit().await.map(drop) });
        tokio::task::yield_now().await;
        // One slot, one waiter already: the next is told at once.
        let t = tokio::time::Instant::now();
        assert_eq!(l.admit().await.unwrap_err(), Busy);
        assert_eq!(t.elapsed(), Duration::ZERO);
        waiting.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn room_waits_for_unsent_replies_then_is_busy() {
        let l = Limits::new(4, 8 << 10, Duration::ZERO);
        let a = l.room(8 << 10).await.unwrap();
        let t = tokio::time::Instant::now();
        assert_eq!(l.room(1).await.unwrap_err(), Busy);
        assert_eq!(t.elapsed(), ROOM_WAIT);
        drop(a);
        assert!(l.room(8 << 10).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn room_now_never_waits_nor_counts_as_refused() {
        let l = Limits::new(4, 8 << 10, Duration::ZERO);
        let a = l.room_now(8 << 10).await.unwrap();
        let t = tokio::time::Instant::now();
        assert!(l.room_now(1).await.is_none());
        assert_eq!(t.elapsed(), Duration::ZERO);
        assert_eq!(l.refused.get(), 0);
        drop(a);
        assert!(l.room_now(8 << 10).await.is_some());
    }
}

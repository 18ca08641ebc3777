//! A byte budget shared by the requests of a service: the memory that results in flight
//! (read, not yet sent) may take, whatever the load.
//!
//! A request takes a [`Lease`] for the bytes it is about to hold before it reads them, waits
//! (bounded) when the budget is spent, and gives the lease back when the last bytes it
//! covers are dropped, which for a reply is once the connection has sent them: the lease
//! rides inside the reply's [`Bytes`] ([`Lease::hold`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget counts KiB: a semaphore's permits are `u32` per acquire, and no lease needs
/// finer grain.
const UNIT: u64 = 1024;

fn units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX)
}

/// Bytes that may be in flight at once.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    sem: Arc<Semaphore>,
    units: u32,
}

impl ByteBudget {
    /// A budget of `bytes` (at least 1 KiB).
    pub fn new(bytes: u64) -> Self {
        let units = units(bytes);
        Self {
            sem: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// The whole budget, in bytes.
    pub fn bytes(&self) -> u64 {
        u64::from(self.units) * UNIT
    }

    /// Bytes not leased now.
    pub fn available(&self) -> u64 {
        self.sem.available_permits() as u64 * UNIT
    }

    /// A lease of `bytes` (all of the budget when they are more), waiting at most `wait`
    /// for it; `None` when it did not come in time.
    pub async fn lease(&self, bytes: u64, wait: Duration) -> Option<Lease> {
        let n = units(bytes).min(self.units);
        match tokio::time::timeout(wait, self.sem.clone().acquire_many_owned(n)).await {
            Ok(Ok(p)) => Some(Lease(p)),
            _ => None,
        }
    }
}

/// Bytes taken from a [`ByteBudget`], given back on drop.
#[derive(Debug)]
pub struct Lease(OwnedSemaphorePermit);

impl Lease {
    /// Gives back what was taken beyond `bytes` (the result turned out smaller than feared).
    pub fn shrink_to(&mut self, bytes: u64) {
        let keep = units(bytes) as usize;
        if keep < self.0.num_permits()
            && let Some(kept) = self.0.split(keep)
        {
            // The old permit, holding the rest, is dropped here: the rest goes back.
            self.0 = kept;
        }
    }

    /// `bytes` carrying this lease, shrunk to their length: it is given back when the last
    /// clone of them is dropped.
    pub fn hold(mut self, bytes: Bytes) -> Bytes {
        self.shrink_to(bytes.len() as u64);
        Bytes::from_owner(Held {
            bytes,
            _lease: self,
        })
    }

    /// A buffer carrying this lease, as [`Lease::hold`], without a copy.
    pub fn hold_owner<T: AsRef<[u8]> + Send + 'static>(mut self, owner: T) -> Bytes {
        self.shrink_to(owner.as_ref().len() as u64);
        Bytes::from_owner(HeldOwner {
            owner,
            _lease: self,
        })
    }
}

struct Held {
    bytes: Bytes,
    _lease: Lease,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

struct HeldOwner<T> {
    owner: T,
    _lease: Lease,
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for HeldOwner<T> {
    fn as_ref(&self) -> &[u8] {
        self.owner.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn leases_wait_then_fail_and_come_back_with_their_bytes() {
        let b = ByteBudget::new(8 << 10);
        let mut a = b.lease(8 << 10, Duration::ZERO).await.unwrap();
        assert_eq!(b.available(), 0);
        // Spent: another lease waits its time, then fails.
        let t = tokio::time::Instant::now();
        assert!(b.lease(1, Duration::from_secs(3)).await.is_none());
        assert_eq!(t.elapsed(), Duration::from_secs(3));
        // The result was 1 KiB: the rest comes back at once.
        a.shrink_to(1 << 10);
        assert_eq!(b.available(), 7 << 10);
        let held = b
            .lease(7 << 10, Duration::ZERO)
            .await
            .unwrap()
            .hold(Bytes::from(vec![1u8; 2048]));
        // Holding shrinks to the bytes held; dropping the last clone gives them back.
        assert_eq!(b.available(), 5 << 10);
        let clone = held.slice(10..20);
        drop(held);
        assert_eq!(b.available(), 5 << 10);
        drop(clone);
        assert_eq!(b.available(), 7 << 10);
        drop(a);
        // More than the whole budget takes all of it rather than never fitting.
        let all = b.lease(1 << 30, Duration::ZERO).await.unwrap();
        assert_eq!(b.available(), 0);
        drop(all);
        assert_eq!(b.available(), b.bytes());
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_lease_gets_bytes_given_back_meanwhile() {
        let b = ByteBudget::new(4 << 10);
        let a = b.lease(4 << 10, Duration::ZERO).await.unwrap();
        let give_back = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(a);
        };
        let (got, ()) = tokio::join!(b.lease(2 << 10, Duration::from_secs(1)), give_back);
        assert!(got.is_some());
    }
}

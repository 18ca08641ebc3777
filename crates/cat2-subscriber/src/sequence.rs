//! Which changes of a root we may have missed.
//!
//! Change messages are at most once: a subscriber whose own NATS connection stays up may
//! still miss changes (a leaf link down between its site and the publisher's, a slow
//! consumer dropped by the server). Publishers number their changes per run (`epoch`,
//! `seq`) and say every heartbeat where they are ([`RootState`]); this module compares
//! what arrives with what we saw, and says when the root must be followed again (one list
//! and one `info` per dataset with the etags we have: only changed datasets are refetched).
//!
//! Several publishers of one root each number their own changes, so positions are kept per
//! (root, epoch); epochs not heard from for a while are forgotten, and at most
//! [`MAX_EPOCHS`] are kept per root, so forged messages cannot grow this without bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cat2_proto::msg::{Change, RootState};

/// Epochs kept per root (publisher replicas, restarts).
pub(crate) const MAX_EPOCHS: usize = 16;

/// An epoch not heard from for this long is forgotten (its publisher stopped).
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// What an arrival means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing was missed.
    InOrder,
    /// Something may have been missed: follow the root again.
    Missed,
}

#[derive(Debug)]
struct Position {
    seq: u64,
    heard: Instant,
}

/// Per root: the last change number seen of each publisher run, and a count of the times
/// something was missed (a follow that started before the last miss does not make the root
/// "in sync").
#[derive(Debug, Default)]
pub(crate) struct Sequences {
    inner: Mutex<HashMap<String, Root>>,
}

#[derive(Debug, Default)]
struct Root {
    epochs: HashMap<u64, Position>,
    misses: u64,
}

impl Sequences {
    fn with<T>(&self, root: &str, f: impl FnOnce(&mut Root) -> T) -> T {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(inner.entry(root.to_owned()).or_default())
    }

    /// A change arrived.
    pub(crate) fn change(&self, root: &str, c: &Change, now: Instant) -> Verdict {
        if c.seq == 0 {
            return Verdict::InOrder; // unnumbered: nothing to compare
        }
        self.observe(root, c.epoch, c.seq, now, true)
    }

    /// A publisher's heartbeat state arrived.
    pub(crate) fn state(&self, root: &str, s: RootState, now: Instant) -> Verdict {
        self.observe(root, s.epoch, s.seq, now, false)
    }

    fn observe(&self, root: &str, epoch: u64, seq: u64, now: Instant, change: bool) -> Verdict {
        self.with(root, |r| {
            r.epochs
                .retain(|_, p| now.saturating_duration_since(p.heard) < FORGET_AFTER);
            let verdict = match r.epochs.get_mut(&epoch) {
                Some(p) => {
                    p.heard = now;
                    // A change is expected to be the next number; a state, to be no further
                    // than the last change seen.
                    let expected = if change { p.seq + 1 } else { p.seq };
                    let missed = seq > expected;
                    p.seq = p.seq.max(seq);
                    if missed {
                        Verdict::Missed
                    } else {
                        Verdict::InOrder
                    }
                }
                None => {
                    if r.epochs.len() >= MAX_EPOCHS {
                        let oldest = r
                            .epochs
                            .iter()
                            .min_by_key(|(_, p)| p.heard)
                            .map(|(e, _)| *e);
                        if let Some(e) = oldest {
                            r.epochs.remove(&e);
                        }
                    }
                    r.epochs.insert(epoch, Position { seq, heard: now });
                    // A run we have not heard from: what it announced before is unknown.
                    Verdict::Missed
                }
            };
            if verdict == Verdict::Missed {
                r.misses += 1;
            }
            verdict
        })
    }

    /// How many times something of `root` was missed so far.
    pub(crate) fn misses(&self, root: &str) -> u64 {
        self.with(root, |r| r.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cat2_proto::DatasetPath;

    fn change(epoch: u64, seq: u64) -> Change {
        Change {
            path: DatasetPath::new("a.b2nd").unwrap(),
            etag: Some("1".into()),
            epoch,
            seq,
        }
    }

    #[test]
    fn gaps_new_runs_and_states_ahead_are_misses() {
        let s = Sequences::default();
        let t = Instant::now();
        let st = |epoch, seq| RootState { epoch, seq };
        assert_eq!(s.state("r", st(1, 0), t), Verdict::Missed, "a new run");
        assert_eq!(s.state("r", st(1, 0), t), Verdict::InOrder);
        assert_eq!(s.change("r", &change(1, 1), t), Verdict::InOrder);
        assert_eq!(s.change("r", &change(1, 2), t), Verdict::InOrder);
        assert_eq!(s.state("r", st(1, 2), t), Verdict::InOrder);
        assert_eq!(s.change("r", &change(1, 4), t), Verdict::Missed, "3 lost");
        assert_eq!(s.state("r", st(1, 6), t), Verdict::Missed, "5 and 6 lost");
        assert_eq!(s.change("r", &change(1, 5), t), Verdict::InOrder, "late");
        assert_eq!(s.misses("r"), 3);
        // A second publisher of the same root numbers its own changes.
        assert_eq!(s.state("r", st(2, 9), t), Verdict::Missed);
        assert_eq!(s.change("r", &change(2, 10), t), Verdict::InOrder);
        assert_eq!(s.change("r", &change(1, 7), t), Verdict::InOrder);
        // Unnumbered changes say nothing.
        assert_eq!(s.change("r", &change(0, 0), t), Verdict::InOrder);
        assert_eq!(s.misses("other"), 0);
    }

    #[test]
    fn epochs_are_bounded_and_forgotten() {
        let s = Sequences::default();
        let t = Instant::now();
        for e in 0..100 {
            s.state("r", RootState { epoch: e, seq: 0 }, t);
        }
        assert!(s.with("r", |r| r.epochs.len()) <= MAX_EPOCHS);
        let later = t + FORGET_AFTER + Duration::from_secs(1);
        s.state("r", RootState { epoch: 500, seq: 0 }, later);
        assert_eq!(s.with("r", |r| r.epochs.len()), 1);
    }
}

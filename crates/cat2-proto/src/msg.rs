//! Messages. Control messages are msgpack maps (named fields, so fields can be added);
//! chunk payloads are raw Blosc2 chunk bytes. Root names and dataset paths are validated as
//! messages are decoded ([`RootName`], [`DatasetPath`]): a message naming an invalid one is
//! refused whole, nowhere else checked again.

use serde::{Deserialize, Serialize};

use crate::Meta;
use crate::name::{DatasetPath, RootName};

/// Header: the chunk number a chunk part belongs to.
pub const HDR_CHUNK: &str = "Cat2-Chunk";
/// Header: `i/n`, this part's index and the number of parts of the chunk.
pub const HDR_PART: &str = "Cat2-Part";
/// Header: total bytes of the chunk (on the first part).
pub const HDR_SIZE: &str = "Cat2-Size";

/// A publisher registering (and, repeated, heart-beating) its root with the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Register {
    /// Root name.
    pub root: RootName,
    /// The publisher instance (distinct per process).
    pub publisher: String,
    /// The publisher's HTTP address (`host:port`) when it serves one.
    pub http: Option<String>,
}

/// The broker's answer to [`Register`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// How often to heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
}

/// One root as the broker knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootEntry {
    /// Root name.
    pub name: RootName,
    /// HTTP address of one of its publishers, when they serve one.
    pub http: Option<String>,
    /// Whether some publisher of it is alive.
    pub online: bool,
}

/// The broker's list of roots, one page of it: a reply stays far under NATS's `max_payload`
/// however many roots exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roots {
    /// Registered roots (offline ones included), by name, at most [`ROOTS_PAGE`].
    pub roots: Vec<RootEntry>,
    /// More roots follow this page: ask again with [`RootsPage::after`] set to this.
    #[serde(default)]
    pub next: Option<RootName>,
}

/// Roots per [`Roots`] page (each entry is under 400 bytes: a name and a bounded address).
pub const ROOTS_PAGE: usize = 1000;
/// Longest `http` address a publisher may register.
pub const MAX_HTTP_LEN: usize = 256;
/// Longest publisher instance id.
pub const MAX_PUBLISHER_LEN: usize = 128;

/// Asks the broker for a page of roots (an empty request asks for the first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootsPage {
    /// The roots after this name.
    #[serde(default)]
    pub after: Option<RootName>,
}

/// A root appeared, came back or went offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootEvent {
    /// The root's new state.
    pub root: RootEntry,
}

/// A publisher's list of datasets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct List {
    /// Dataset paths relative to the root.
    pub datasets: Vec<DatasetPath>,
}

/// Asks for a dataset's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoRequest {
    /// Dataset path.
    pub path: DatasetPath,
    /// The etag the asker has: when it is current, the reply carries no metadata.
    pub if_none_match: Option<String>,
}

/// A dataset's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// Current etag (changes whenever the dataset does).
    pub etag: String,
    /// The metadata, or `None` when the asker's etag is current.
    pub meta: Option<Meta>,
    /// Digests of the chunks (and blocks) as the publisher serves them, sent with `meta`;
    /// `None` from publishers that cannot digest this dataset (or predate digests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digests: Option<Digests>,
}

/// The digest algorithm of [`Digests`]: BLAKE3, its first [`DIGEST_LEN`] bytes.
pub const DIGEST_ALGO: &str = "blake3-128";
/// Bytes per digest.
pub const DIGEST_LEN: usize = 16;
/// A digest that no bytes match: the publisher could not read that chunk or block (or its
/// blocks do not decode alone), so whatever a reply holds for it is refused.
pub const NO_DIGEST: [u8; DIGEST_LEN] = [0xff; DIGEST_LEN];

/// What a subscriber checks every chunk and block reply against before it stores or serves
/// it: computed by the publisher from its source when it opened this version, so a member of
/// the queue group that answers with other bytes (a rogue, a broken replica, a relay serving
/// another version) is caught and asked again elsewhere. Each digest is
/// [`DIGEST_ALGO`] of the reply's bytes exactly as served (the chunk as stored; a block as the
/// one-block chunk a blocks request returns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    /// [`DIGEST_ALGO`]; anything else is not checked (and the dataset treated as without).
    pub algo: String,
    /// [`DIGEST_LEN`] bytes per chunk, in chunk order.
    #[serde(with = "serde_bytes")]
    pub chunks: Vec<u8>,
    /// [`DIGEST_LEN`] bytes per block, chunk after chunk (`blocks_per_chunk` each); empty
    /// when there are too many to send (small reads then fetch whole chunks).
    #[serde(with = "serde_bytes", default)]
    pub blocks: Vec<u8>,
}

impl Digests {
    /// Whether the lengths fit a dataset of `nchunks` chunks of `blocks_per_chunk` blocks
    /// (checked before any digest is used: they came over the bus).
    pub fn fits(&self, nchunks: u64, blocks_per_chunk: u64) -> bool {
        let want = |n: u64| n.checked_mul(DIGEST_LEN as u64);
        self.algo == DIGEST_ALGO
            && want(nchunks) == Some(self.chunks.len() as u64)
            && (self.blocks.is_empty()
                || nchunks
                    .checked_mul(blocks_per_chunk)
                    .and_then(want)
                    .is_some_and(|w| w == self.blocks.len() as u64))
    }

    /// Chunk `n`'s digest (`None` past the end).
    pub fn chunk(&self, n: u64) -> Option<&[u8]> {
        digest_at(&self.chunks, n)
    }

    /// Block `b` of chunk `n` (`None` when block digests were not sent, or past the end).
    pub fn block(&self, n: u64, b: u64, blocks_per_chunk: u64) -> Option<&[u8]> {
        if b >= blocks_per_chunk {
            return None;
        }
        digest_at(
            &self.blocks,
            n.checked_mul(blocks_per_chunk)?.checked_add(b)?,
        )
    }
}

fn digest_at(all: &[u8], i: u64) -> Option<&[u8]> {
    let at = usize::try_from(i).ok()?.checked_mul(DIGEST_LEN)?;
    all.get(at..at.checked_add(DIGEST_LEN)?)
}

/// Asks for raw chunks of a dataset at a given etag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunksRequest {
    /// Dataset path.
    pub path: DatasetPath,
    /// The etag the asker's metadata has: a different current etag is an error
    /// ([`crate::ErrorCode::Stale`]), never chunks of another version.
    pub etag: String,
    /// Chunk numbers, answered in this order.
    pub chunks: Vec<u64>,
    /// Largest message the asker's server accepts (parts are cut to fit).
    pub max_part: u64,
}

/// Asks for single blocks of one chunk (small reads of chunks not cached yet). Each block
/// comes back as a one-block Blosc2 chunk, in the chunk stream format (`Cat2-Chunk` is the
/// block number). A chunk whose blocks do not decode alone (delta filter, dictionary, plain
/// files) is answered with [`crate::ErrorCode::BadRequest`]: fetch the whole chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocksRequest {
    /// Dataset path.
    pub path: DatasetPath,
    /// As in [`ChunksRequest`].
    pub etag: String,
    /// The chunk.
    pub chunk: u64,
    /// Block numbers within the chunk, answered in this order.
    pub blocks: Vec<u64>,
    /// Largest message the asker's server accepts.
    pub max_part: u64,
}

/// A dataset was added, modified (`etag` set) or deleted (`etag` none).
///
/// Changes are numbered per publisher run (`epoch`, then `seq` from 1), and every heartbeat
/// the publisher also says where it is ([`RootState`]): a subscriber that sees a gap, an
/// epoch it does not know or a state past the last change it saw has missed changes (core
/// NATS is at most once, and a leaf link may be down while the subscriber's own connection
/// stays up), and re-follows the root. `seq` 0 is an unnumbered change (older publishers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Dataset path.
    pub path: DatasetPath,
    /// Its new etag, `None` when deleted.
    pub etag: Option<String>,
    /// The publisher run that announced it.
    #[serde(default)]
    pub epoch: u64,
    /// Its number in that run (1, 2, …; 0 when unnumbered).
    #[serde(default)]
    pub seq: u64,
}

/// A publisher's position in its change sequence, published every heartbeat on
/// [`crate::subject::root_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootState {
    /// The publisher run.
    pub epoch: u64,
    /// The number of the last change it announced (0: none yet).
    pub seq: u64,
}

/// A subscriber's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberStatus {
    /// Roots followed.
    pub subscribed: Vec<RootName>,
    /// The HTTP address it serves.
    pub http: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, encode};

    #[test]
    fn messages_round_trip() {
        let name = |s: &str| RootName::new(s).unwrap();
        let path = |s: &str| DatasetPath::new(s).unwrap();
        let r = Register {
            root: name("foo"),
            publisher: "p1".into(),
            http: Some("localhost:8001".into()),
        };
        assert_eq!(decode::<Register>("register", &encode(&r)).unwrap(), r);
        let c = ChunksRequest {
            path: path("a.b2nd"),
            etag: "1:2".into(),
            chunks: vec![3, 1],
            max_part: 1 << 20,
        };
        assert_eq!(decode::<ChunksRequest>("chunks", &encode(&c)).unwrap(), c);
        let e = Change {
            epoch: 7,
            seq: 3,
            path: path("x"),
            etag: None,
        };
        assert_eq!(decode::<Change>("change", &encode(&e)).unwrap(), e);
        // An unnumbered change (a publisher before change numbers) still decodes.
        #[derive(Serialize)]
        struct Old<'a> {
            path: &'a str,
            etag: Option<&'a str>,
        }
        let old = encode(&Old {
            path: "x",
            etag: Some("1"),
        });
        assert_eq!(decode::<Change>("change", &old).unwrap().seq, 0);
        assert!(decode::<Register>("register", b"\xc1").is_err());
        assert!(decode::<Register>("register", &encode(&e)).is_err());
    }

    #[test]
    fn digests_travel_in_info_and_are_checked_for_fit() {
        let d = Digests {
            algo: DIGEST_ALGO.into(),
            chunks: (0..32).collect(),
            blocks: (0..64).collect(),
        };
        let info = Info {
            etag: "e".into(),
            meta: None,
            digests: Some(d.clone()),
        };
        assert_eq!(decode::<Info>("info", &encode(&info)).unwrap(), info);
        // Two chunks of two blocks.
        assert!(d.fits(2, 2));
        assert!(!d.fits(3, 2) && !d.fits(2, 3));
        assert!(!d.fits(u64::MAX, 2), "no overflow on forged sizes");
        assert_eq!(d.chunk(1), Some(&d.chunks[16..32]));
        assert_eq!(d.chunk(2), None);
        assert_eq!(d.block(1, 1, 2), Some(&d.blocks[48..64]));
        assert_eq!(d.block(0, 2, 2), None);
        assert!(d.block(u64::MAX, 1, 2).is_none());
        let other = Digests {
            algo: "md5".into(),
            ..d
        };
        assert!(!other.fits(2, 2));
        // An info from a publisher before digests still decodes.
        #[derive(Serialize)]
        struct Old<'a> {
            etag: &'a str,
            meta: Option<()>,
        }
        let old = encode(&Old {
            etag: "e",
            meta: None,
        });
        assert_eq!(decode::<Info>("info", &old).unwrap().digests, None);
    }

    /// What a rogue client might send: the same fields, names no one may use.
    #[derive(Serialize)]
    struct Forged<'a> {
        root: &'a str,
        path: &'a str,
        publisher: &'a str,
        etag: Option<String>,
        http: Option<String>,
    }

    #[test]
    fn invalid_names_do_not_decode() {
        for (root, path) in [
            ("a.b", "x"),
            ("foo", "../etc/passwd"),
            ("foo", "/abs"),
            ("*", "x"),
        ] {
            let m = Forged {
                root,
                path,
                publisher: "p",
                etag: None,
                http: None,
            };
            let bytes = encode(&m);
            let bad_root = RootName::new(root).is_err();
            assert_eq!(
                decode::<Register>("register", &bytes).is_err(),
                bad_root,
                "{root}"
            );
            let bad_path = DatasetPath::new(path).is_err();
            assert_eq!(
                decode::<Change>("change", &bytes).is_err(),
                bad_path,
                "{path}"
            );
        }
        let list = List {
            datasets: vec![DatasetPath::new("a/b.b2nd").unwrap()],
        };
        assert_eq!(decode::<List>("list", &encode(&list)).unwrap(), list);
    }
}

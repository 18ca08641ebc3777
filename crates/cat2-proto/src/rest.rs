//! The subscriber's REST replies (Caterva2 0.2.0's JSON, spec §2.3), defined once: the
//! subscriber serialises them, `cat2cli` and the tests parse them.
//!
//! `GET /api/info/{path}` is the one reply not typed here: it is Caterva2's `info` object,
//! whose shape depends on the dataset's kind, made by [`crate::Meta`]'s owner in one place
//! and passed through by clients for display.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// One root of `GET /api/roots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootReply {
    /// The root's name.
    pub name: String,
    /// Its publisher's HTTP address (`""` when it has none).
    #[serde(default)]
    pub http: String,
    /// `true` when this subscriber follows it, `null` otherwise (0.2.0's form).
    #[serde(default)]
    pub subscribed: Option<bool>,
    /// Whether a publisher of it is alive.
    #[serde(default)]
    pub online: bool,
}

impl RootReply {
    /// Whether the subscriber follows the root.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed == Some(true)
    }
}

/// `GET /api/roots`: root name → root, in the server's order (Caterva2 lists roots as they
/// were announced; cat2 by name).
pub type RootsReply = IndexMap<String, RootReply>;

/// `POST /api/subscribe/{root}`: the text `Ok`.
pub type SubscribeReply = String;

/// What [`SubscribeReply`] says on success.
pub const SUBSCRIBED: &str = "Ok";

/// `GET /api/list/{root}`: the root's dataset paths.
pub type ListReply = Vec<String>;

/// `GET /api/url/{path}`: the publisher's URLs for a root (one) or a dataset (info and
/// download).
pub type UrlReply = Vec<String>;

/// `GET /api/download/{path}`: the URL the dataset's file is served at.
pub type DownloadReply = String;

/// The body of every error (FastAPI's form), with the HTTP status telling its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong, for people.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_caterva2s_json() {
        let mut roots = RootsReply::new();
        for (name, subscribed) in [("b", None), ("a", Some(true))] {
            let r = RootReply {
                name: name.into(),
                http: "h:1".into(),
                subscribed,
                online: true,
            };
            roots.insert(name.into(), r);
        }
        let text = serde_json::to_string(&roots).unwrap();
        assert_eq!(
            text,
            r#"{"b":{"name":"b","http":"h:1","subscribed":null,"online":true},"a":{"name":"a","http":"h:1","subscribed":true,"online":true}}"#
        );
        let back: RootsReply = serde_json::from_str(&text).unwrap();
        assert_eq!(back, roots);
        assert!(back["a"].is_subscribed() && !back["b"].is_subscribed());
        // 0.2.0 may leave fields out: they default.
        let r: RootReply = serde_json::from_str(r#"{"name":"x"}"#).unwrap();
        assert!(!r.online && !r.is_subscribed() && r.http.is_empty());
        let e: ErrorReply = serde_json::from_str(r#"{"detail":"Not Found"}"#).unwrap();
        assert_eq!(e.detail, "Not Found");
    }
}

//! NATS authorization for a cat2 deployment: who may say what on the bus.
//!
//! Without it any client that reaches the NATS server can register roots, answer chunk
//! requests with other bytes, spoof changes and root events, and read other clients' replies.
//! With it nats-server itself refuses each of these: every service connects as a user whose
//! subject permissions allow exactly its role, built here from the subjects of
//! [`cat2_proto::subject`] (so permissions and protocol cannot drift apart):
//!
//! | role | may publish | may subscribe |
//! | --- | --- | --- |
//! | broker (`bro`) | root events; replies | registrations of any root, root listings |
//! | publisher of R (`pub-R`) | R's changes and state; R's registration; replies | R's requests |
//! | subscriber ID (`sub-ID`) | requests to any root and the broker; replies | changes, state, root events, its own status |
//! | monitor (`monitor`) | `$SRV` discovery | — |
//!
//! Every user also subscribes to `$SRV.>` (NATS micro-service discovery) and to its own reply
//! subjects only (`_INBOX.<user>.>`, the services' `[nats] inbox_prefix`), so no client can
//! read the replies meant for another. Replies are published to `_INBOX.>`: a responder may
//! still answer into another client's inbox if it learns its name (names are random, and
//! reading inboxes is what the prefixes forbid).
//!
//! [`generate`] writes a server include file (bcrypt hashes, never the passwords) and one
//! `[nats]` client section per user (`cat2-nats-auth`, README "Security").

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cat2_proto::{RootName, subject};

/// What a user is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Brokers (every broker of a deployment may share this user).
    Broker,
    /// The publishers of one root (its replicas share the user).
    Publisher(RootName),
    /// The subscriber with this instance id (`cat2sub --id`, `default` without one).
    Subscriber(String),
    /// Monitoring tools: NATS micro-service discovery (`$SRV.PING/INFO/STATS`) only.
    Monitor,
}

/// Subjects a user may publish to and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// Publish allow list.
    pub publish: Vec<String>,
    /// Subscribe allow list.
    pub subscribe: Vec<String>,
}

/// Replies go to requesters' inboxes, whatever their prefix.
const ANY_INBOX: &str = "_INBOX.>";
/// NATS micro-service discovery (ADR-32).
const DISCOVERY: &str = "$SRV.>";

impl Role {
    /// The NATS user name of this role.
    pub fn user(&self) -> String {
        match self {
            Role::Broker => "bro".to_owned(),
            Role::Publisher(r) => format!("pub-{r}"),
            Role::Subscriber(id) => format!("sub-{id}"),
            Role::Monitor => "monitor".to_owned(),
        }
    }

    /// The prefix of this user's reply subjects (its `[nats] inbox_prefix`).
    pub fn inbox_prefix(&self) -> String {
        format!("_INBOX.{}", self.user())
    }

    /// What this role may publish and subscribe to.
    pub fn permissions(&self) -> Permissions {
        let own_inbox = format!("{}.>", self.inbox_prefix());
        let (publish, subscribe) = match self {
            Role::Broker => (
                vec![subject::broker_events(), ANY_INBOX.to_owned()],
                vec![
                    subject::broker_register_any(),
                    subject::broker_roots(),
                    DISCOVERY.to_owned(),
                ],
            ),
            Role::Publisher(r) => (
                vec![
                    subject::root_changes(r),
                    subject::root_state(r),
                    subject::broker_register(r),
                    ANY_INBOX.to_owned(),
                ],
                subject::ROOT_REQUESTS
                    .iter()
                    .map(|v| subject::root_request(Some(r), v))
                    .chain([DISCOVERY.to_owned()])
                    .collect(),
            ),
            Role::Subscriber(id) => (
                subject::ROOT_REQUESTS
                    .iter()
                    .map(|v| subject::root_request(None, v))
                    .chain([subject::broker_roots(), ANY_INBOX.to_owned()])
                    .collect(),
                vec![
                    subject::any_root_changes(),
                    subject::any_root_state(),
                    subject::broker_events(),
                    subject::subscriber_status(id),
                    DISCOVERY.to_owned(),
                ],
            ),
            Role::Monitor => (vec![DISCOVERY.to_owned()], vec![]),
        };
        Permissions {
            publish,
            subscribe: subscribe.into_iter().chain([own_inbox]).collect(),
        }
    }
}

/// One user of a deployment, with its password.
#[derive(Debug, Clone)]
pub struct User {
    /// Its role (which gives its name and permissions).
    pub role: Role,
    /// Its password (random unless given).
    pub password: String,
}

impl User {
    /// A user for `role` with a random 128-bit password.
    ///
    /// # Errors
    /// When the system's random source fails.
    pub fn new(role: Role) -> anyhow::Result<Self> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
        let password = raw.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        Ok(Self { role, password })
    }

    /// Its `[nats]` section for cat2's configuration file.
    pub fn client_conf(&self) -> String {
        format!(
            "# NATS identity of {} (cat2-nats-auth): use as --conf, or copy into caterva2.toml.\n\
             [nats]\nuser = \"{}\"\npassword = \"{}\"\ninbox_prefix = \"{}\"\n",
            self.role.user(),
            self.role.user(),
            self.password,
            self.role.inbox_prefix()
        )
    }
}

fn quoted(list: &[String]) -> String {
    list.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The server's `authorization` block for `users`, their passwords as bcrypt hashes of
/// `cost` (nats-server checks them on every connection: 11 is NATS's own default).
///
/// # Errors
/// When hashing fails (a cost outside 4..=31).
pub fn server_conf(users: &[User], cost: u32) -> anyhow::Result<String> {
    let mut out = String::from(
        "# cat2's NATS users (cat2-nats-auth): include from the server's configuration,\n\
         # `include \"auth.conf\"`. Passwords are bcrypt hashes; clients hold the passwords.\n\
         authorization {\n  users: [\n",
    );
    for u in users {
        let hash = bcrypt::hash(&u.password, cost).context("bcrypt")?;
        let p = u.role.permissions();
        let _ = writeln!(
            out,
            "    {{ user: \"{}\", password: \"{hash}\", permissions: {{\n        \
             publish: {{ allow: [{}] }},\n        subscribe: {{ allow: [{}] }} }} }}",
            u.role.user(),
            quoted(&p.publish),
            quoted(&p.subscribe)
        );
    }
    out.push_str("  ]\n}\n");
    Ok(out)
}

/// Writes `auth.conf` (the server's part) and `<user>.toml` (each service's `[nats]`
/// section, readable by its owner only) into the new directory `out`; returns the paths.
///
/// # Errors
/// When `out` exists (credentials are never overwritten), two roles share a user, or writing
/// fails.
pub fn generate(out: &Path, roles: &[Role], cost: u32) -> anyhow::Result<Vec<PathBuf>> {
    if out.exists() {
        bail!(
            "{} exists: choose a new directory (credentials are never overwritten)",
            out.display()
        );
    }
    let mut names: Vec<String> = roles.iter().map(Role::user).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("user {} is given twice", w[0]);
    }
    let users = roles
        .iter()
        .cloned()
        .map(User::new)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let server = server_conf(&users, cost)?;
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let mut written = Vec::new();
    let conf = out.join("auth.conf");
    write_private(&conf, &server)?;
    written.push(conf);
    for u in &users {
        let path = out.join(format!("{}.toml", u.role.user()));
        write_private(&path, &u.client_conf())?;
        written.push(path);
    }
    Ok(written)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(s: &str) -> RootName {
        RootName::new(s).unwrap()
    }

    #[test]
    fn each_role_may_say_only_its_part() {
        let p = Role::Publisher(root("foo")).permissions();
        assert!(
            p.publish
                .contains(&"cat2.v1.broker.register.foo".to_owned())
        );
        assert!(
            !p.publish
                .iter()
                .any(|s| s.contains("bar") || s == "cat2.v1.broker.events")
        );
        assert!(p.subscribe.contains(&"cat2.v1.root.foo.chunks".to_owned()));
        assert!(p.subscribe.contains(&"_INBOX.pub-foo.>".to_owned()));
        let s = Role::Subscriber("b".into()).permissions();
        assert!(s.publish.contains(&"cat2.v1.root.*.chunks".to_owned()));
        assert!(
            !s.subscribe
                .iter()
                .any(|x| x.ends_with(".chunks") || x == "_INBOX.>")
        );
        assert!(
            !s.publish
                .iter()
                .any(|x| x.contains("register") || x.ends_with("changes"))
        );
        let b = Role::Broker.permissions();
        assert_eq!(b.publish, ["cat2.v1.broker.events", "_INBOX.>"]);
    }

    #[test]
    fn generates_hashes_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("auth");
        let roles = [Role::Broker, Role::Publisher(root("foo"))];
        let files = generate(&out, &roles, 4).unwrap();
        assert_eq!(files.len(), 3);
        let server = std::fs::read_to_string(out.join("auth.conf")).unwrap();
        let client = std::fs::read_to_string(out.join("pub-foo.toml")).unwrap();
        let password = client
            .lines()
            .find_map(|l| l.strip_prefix("password = \""))
            .unwrap()
            .trim_end_matches('"');
        assert_eq!(password.len(), 32);
        assert!(!server.contains(password), "the server holds hashes only");
        assert!(server.contains("\"$2b$04$"), "{server}");
        assert!(generate(&out, &roles, 4).is_err());
        let twice = [Role::Broker, Role::Broker];
        assert!(generate(&dir.path().join("x"), &twice, 4).is_err());
    }
}

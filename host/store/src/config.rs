//! Where the data lives: the typed configuration of [`Store::open`](crate::Store::open).

use std::fmt;
use std::path::PathBuf;

/// SurrealDB namespace used unless a remote spec names another.
pub const DEFAULT_NAMESPACE: &str = "edgepbx";
/// SurrealDB database used unless a remote spec names another.
pub const DEFAULT_DATABASE: &str = "main";

/// Which database to use. Both kinds go through the same code path (the
/// SurrealDB `any` engine); only the endpoint differs.
#[derive(Clone, PartialEq, Eq)]
pub enum DbSpec {
    /// An embedded SurrealKV database in a local directory (created if
    /// missing). One process at a time may open it.
    Embedded {
        /// The data directory, e.g. `./data`.
        path: PathBuf,
    },
    /// A SurrealDB server (or cluster) reached over WebSocket.
    Remote {
        /// `ws://host:port`, or `wss://host:port` for TLS.
        url: String,
        /// SurrealDB namespace.
        namespace: String,
        /// SurrealDB database.
        database: String,
        /// User to sign in as; `None` connects without signing in.
        username: Option<String>,
        /// The user's password; required when `username` is set.
        password: Option<String>,
        /// Whether `username` is a user of `database` (`DEFINE USER ... ON
        /// DATABASE`) rather than a root user.
        database_user: bool,
        /// A PEM file of certificates to trust for `wss://` besides the
        /// system's (a private CA).
        ca_file: Option<PathBuf>,
    },
}

impl DbSpec {
    /// An embedded database in `path`.
    pub fn embedded(path: impl Into<PathBuf>) -> Self {
        DbSpec::Embedded { path: path.into() }
    }

    /// A remote database at `url` with the default namespace and database
    /// and no credentials.
    pub fn remote(url: impl Into<String>) -> Self {
        DbSpec::Remote {
            url: url.into(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            database: DEFAULT_DATABASE.to_owned(),
            username: None,
            password: None,
            database_user: false,
            ca_file: None,
        }
    }
}

// Hand-written so that a password never reaches a log line.
impl fmt::Debug for DbSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbSpec::Embedded { path } => f.debug_struct("Embedded").field("path", path).finish(),
            DbSpec::Remote {
                url,
                namespace,
                database,
                username,
                password,
                database_user,
                ca_file,
            } => f
                .debug_struct("Remote")
                .field("url", url)
                .field("namespace", namespace)
                .field("database", database)
                .field("username", username)
                .field("password", &password.as_ref().map(|_| "<redacted>"))
                .field("database_user", database_user)
                .field("ca_file", ca_file)
                .finish(),
        }
    }
}

/// Configuration of [`Store::open`](crate::Store::open).
///
/// There is deliberately no block-cache setting: SurrealDB 3.3.5's SDK gives
/// no way to pass SurrealKV's `block_cache_capacity` (see the crate README),
/// and a setting that silently does nothing would be worse than none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Which database to open.
    pub spec: DbSpec,
    /// The file of the key that seals stored secrets (see
    /// [`Sealer`](crate::Sealer)); created when missing. An embedded
    /// database's default is [`KEY_FILE`](crate::KEY_FILE) in its
    /// directory; a remote one has no default.
    pub key_file: Option<PathBuf>,
}

impl StoreConfig {
    /// A configuration for `spec`, with an embedded database's key file in
    /// its directory.
    pub fn new(spec: DbSpec) -> Self {
        let key_file = match &spec {
            DbSpec::Embedded { path } => Some(path.join(crate::KEY_FILE)),
            DbSpec::Remote { .. } => None,
        };
        StoreConfig { spec, key_file }
    }

    /// The same, with the sealing key in `path`.
    pub fn with_key_file(self, path: impl Into<PathBuf>) -> Self {
        StoreConfig {
            key_file: Some(path.into()),
            ..self
        }
    }
}

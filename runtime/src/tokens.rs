//! tokens: who may call the API. Scopes, token secrets and their hashes, the node's auth
//! settings, and [`Tokens`], the node's view of the tokens in the store (cached for at most
//! [`FRESH`], so a token made or revoked on any node of a cluster counts on this one within
//! about a second).
//!
//! A secret is `dl_` followed by 64 hex digits (256 random bits); only its blake3 hash is
//! kept, and a presented secret is hashed and compared with every known hash in constant
//! time. The admin token given at `serve` (`DRIFTLESS_ADMIN_TOKEN`, `--admin-token-file`) is
//! held in memory only, by hash, under the reserved name `admin`.
//!
//! Open mode: with no admin token given and no token in the store, a node on loopback (or one
//! started with `--insecure-no-auth`) serves every request without a token, as a local
//! development daemon. Once any token exists in the store, auth is on for every node of the
//! store, whatever it was started with.

use crate::store::{Store, StoreError, StoreResult, TokenRecord, now_ms};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How stale this node's view of the stored tokens may be: a token revoked on any node stops
/// working here within this long.
pub const FRESH: Duration = Duration::from_secs(1);

/// How stale the view may be when a presented secret matches no token: a token made on
/// another node a moment ago works here after at most this long.
const FRESH_ON_MISS: Duration = Duration::from_millis(100);

/// How often this node records a token's use in the store, at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The prefix of every secret this runtime makes, so a leaked one is recognisable.
pub const SECRET_PREFIX: &str = "dl_";

/// The name the admin token given at `serve` goes by (in the audit trail, in 403 messages).
pub const ADMIN_NAME: &str = "admin";

/// The shortest admin token `serve` accepts.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// What a token may do. `admin` grants every scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read jobs, tasks, modules, nodes and metrics.
    Read,
    /// Submit and cancel jobs, upload components, check components.
    Submit,
    /// Deploy, roll back and unregister task versions.
    Deploy,
    /// Drain and resume the node, manage tokens; grants every other scope too.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Submit, Scope::Deploy, Scope::Admin];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Submit => "submit",
            Scope::Deploy => "deploy",
            Scope::Admin => "admin",
        }
    }

    /// The scope named `name`.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a request is from, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Open mode: no token is configured; anyone who can reach the node (on loopback) may call.
    Open,
    /// A token's bearer.
    Token(Grant),
}

/// A token's name and scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The token's name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<Scope>,
}

impl Grant {
    /// Whether it grants `scope` (`admin` grants every one).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Tokens are on and the request carried none.
    #[error("this node requires a token")]
    Missing,
    /// The request carried a token that is not (or no longer) valid.
    #[error("the token is not valid")]
    Invalid,
    /// The store could not be read to check the token.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The hash of a secret as it is stored (hex).
pub fn hash(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex().to_string()
}

/// A fresh secret: `dl_` and 64 hex digits.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{SECRET_PREFIX}{hex}")
}

/// Whether `name` may name a token: 1 to 64 letters, digits, `.`, `_`, `-` or `@`, and not the
/// reserved `admin`. The error says what to do.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err(format!(
            "`{name}` is not a token name: use 1 to 64 letters, digits, `.`, `_`, `-` or `@` (e.g. ci-deploy)"
        ));
    }
    if name == ADMIN_NAME {
        return Err(format!(
            "`{ADMIN_NAME}` is reserved for the token given to `driftless serve` (DRIFTLESS_ADMIN_TOKEN); choose another name"
        ));
    }
    Ok(())
}

/// The admin token given at `serve`, kept as its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(blake3::Hash);

impl AdminToken {
    /// The admin token `secret` (surrounding whitespace, such as a file's final newline, is
    /// not part of it). Refuses one shorter than [`MIN_ADMIN_TOKEN_LEN`].
    pub fn new(secret: &str) -> Result<AdminToken, String> {
        let secret = secret.trim();
        if secret.len() < MIN_ADMIN_TOKEN_LEN {
            return Err(format!(
                "the admin token is {} characters long; use at least {MIN_ADMIN_TOKEN_LEN} random ones, e.g. `head -c 32 /dev/urandom | base64` or a secret from `driftless tokens create`",
                secret.len()
            ));
        }
        Ok(AdminToken(blake3::hash(secret.as_bytes())))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// A node's auth settings (`serve`'s flags).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The admin token given at start, if any.
    pub admin: Option<AdminToken>,
    /// Whether open mode may apply: the node listens on loopback, or was started with
    /// `--insecure-no-auth`. When false, a node without tokens refuses every request that
    /// needs one.
    pub open_allowed: bool,
    /// Host names (with or without a port) open mode accepts besides the loopback names.
    pub allowed_hosts: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            admin: None,
            open_allowed: true,
            allowed_hosts: vec![],
        }
    }
}

/// A stored token as this node compares it.
struct Known {
    hash: blake3::Hash,
    grant: Grant,
}

/// This node's view of the stored tokens.
#[derive(Default)]
struct Snapshot {
    taken: Option<Instant>,
    tokens: Arc<Vec<Known>>,
}

/// The node's tokens: the admin token and a view of the store's, at most [`FRESH`] old.
pub struct Tokens {
    config: AuthConfig,
    store: Arc<dyn Store>,
    snapshot: tokio::sync::Mutex<Snapshot>,
    touched: Mutex<HashMap<String, Instant>>,
}

impl Tokens {
    /// The tokens of a node with `config` over `store`.
    pub fn new(config: AuthConfig, store: Arc<dyn Store>) -> Tokens {
        Tokens {
            config,
            store,
            snapshot: tokio::sync::Mutex::default(),
            touched: Mutex::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The stored tokens, read again when the view is older than `fresh`. One refresh runs at
    /// a time; callers wait for it.
    async fn known(&self, fresh: Duration) -> StoreResult<Arc<Vec<Known>>> {
        let mut snapshot = self.snapshot.lock().await;
        if snapshot.taken.is_some_and(|t| t.elapsed() < fresh) {
            return Ok(snapshot.tokens.clone());
        }
        let tokens: Vec<Known> = self
            .store
            .list_tokens()
            .await?
            .into_iter()
            .filter_map(known)
            .collect();
        snapshot.tokens = Arc::new(tokens);
        snapshot.taken = Some(Instant::now());
        Ok(snapshot.tokens.clone())
    }

    /// Whether the node is in open mode now: no admin token, no stored token, and open mode
    /// allowed.
    pub async fn is_open(&self) -> StoreResult<bool> {
        Ok(self.config.open_allowed
            && self.config.admin.is_none()
            && self.known(FRESH).await?.is_empty())
    }

    /// Who presents `bearer` (the secret of an `Authorization: Bearer` header, if any). In open
    /// mode every request is [`Caller::Open`], token or not.
    pub async fn caller(&self, bearer: Option<&str>) -> Result<Caller, Denied> {
        let Some(secret) = bearer else {
            return if self.is_open().await? {
                Ok(Caller::Open)
            } else {
                Err(Denied::Missing)
            };
        };
        let presented = blake3::hash(secret.as_bytes());
        // Constant time: compare with every known hash, without stopping at a match.
        let admin = self.config.admin.as_ref().is_some_and(|a| a.0 == presented);
        if admin {
            return Ok(Caller::Token(Grant {
                name: ADMIN_NAME.into(),
                scopes: vec![Scope::Admin],
            }));
        }
        let found = match find(&self.known(FRESH).await?, &presented) {
            Some(grant) => Some(grant),
            None => find(&self.known(FRESH_ON_MISS).await?, &presented),
        };
        match found {
            Some(grant) => {
                self.touch(&grant.name);
                Ok(Caller::Token(grant))
            }
            None if self.is_open().await? => Ok(Caller::Open),
            None => Err(Denied::Invalid),
        }
    }

    /// Record a stored token's use, at most once per [`TOUCH_EVERY`] per node, in the
    /// background.
    fn touch(&self, name: &str) {
        {
            let mut touched = self.touched.lock().expect("touched lock");
            if touched.get(name).is_some_and(|t| t.elapsed() < TOUCH_EVERY) {
                return;
            }
            touched.insert(name.to_string(), Instant::now());
        }
        let (store, name) = (self.store.clone(), name.to_string());
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&name, now_ms()).await {
                tracing::warn!(token = %name, error = %e, "could not record a token's use");
            }
        });
    }

    /// Forget the view of the store, so the next request reads it again (after this node made
    /// or revoked a token).
    pub async fn forget(&self) {
        self.snapshot.lock().await.taken = None;
    }
}

/// A stored token, unless its hash is unreadable (then it matches nothing).
fn known(t: TokenRecord) -> Option<Known> {
    let hash = blake3::Hash::from_hex(&t.hash).ok()?;
    let scopes = t.scopes.iter().filter_map(|s| Scope::parse(s)).collect();
    Some(Known {
        hash,
        grant: Grant {
            name: t.name,
            scopes,
        },
    })
}

/// The grant whose hash is `presented`, comparing every hash in constant time.
fn find(known: &[Known], presented: &blake3::Hash) -> Option<Grant> {
    let mut found = None;
    for k in known {
        if k.hash == *presented {
            found = Some(k.grant.clone());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hash_to_hex() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with(SECRET_PREFIX) && a.len() == SECRET_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash(&a).len(), 64);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn admin_grants_every_scope_and_others_only_their_own() {
        let grant = |scopes: &[Scope]| Grant {
            name: "t".into(),
            scopes: scopes.to_vec(),
        };
        for s in Scope::ALL {
            assert!(grant(&[Scope::Admin]).allows(s));
            assert_eq!(grant(&[Scope::Read]).allows(s), s == Scope::Read);
        }
        assert_eq!(Scope::parse("deploy"), Some(Scope::Deploy));
        assert_eq!(Scope::parse("write"), None);
    }

    #[test]
    fn names_are_checked_and_admin_is_reserved() {
        assert!(check_name("ci-deploy@prod.1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name(ADMIN_NAME).unwrap_err().contains("reserved"));
        assert!(AdminToken::new("short").is_err());
        assert!(AdminToken::new(" 0123456789abcdef\n").is_ok());
    }
}

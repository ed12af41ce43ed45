//! A test environment for one capability's service, without a server or a
//! wasm build: a data directory with a real metadata database, users and
//! vals in it, and the two kinds of scope holder (a REST caller's
//! principal, a call's grant).

use std::time::Duration;

use super::{CallOf, Capability, CapsConfig, Grant, Settings};
use valbox_auth::CallTokens;
use valbox_model::{Principal, Scope, Scopes};
use valbox_store as db;
use valbox_store::Db;
use valbox_store::secrets::SecretBox;

pub struct TestEnv {
    /// The data directory, deleted when the environment is dropped.
    _dir: tempfile::TempDir,
    pub config: CapsConfig,
    pub db: Db,
    pub secrets: SecretBox,
    pub call_tokens: CallTokens,
}

impl TestEnv {
    pub fn new() -> Self {
        Self::with_config(|_| {})
    }

    /// An environment whose config `tune` adjusts first (limits, say).
    pub fn with_config(tune: impl FnOnce(&mut CapsConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = CapsConfig {
            data_dir: dir.path().to_path_buf(),
            limits: Default::default(),
            fetch_policy: Default::default(),
            smtp: None,
        };
        tune(&mut config);
        let db = Db::open(&dir.path().join("valbox.db")).unwrap();
        let secrets = SecretBox::load_or_create(&dir.path().join("secret.key")).unwrap();
        Self {
            _dir: dir,
            config,
            db,
            secrets,
            call_tokens: CallTokens::default(),
        }
    }

    /// Capability `C`'s service, built as the server builds it.
    pub fn open<C: Capability>(&self) -> C {
        C::open(&Settings {
            config: &self.config,
            db: &self.db,
            secrets: &self.secrets,
        })
        .unwrap()
    }

    /// A new user; returns its id.
    pub fn user(&self, name: &str) -> String {
        let email = format!("{name}@example.com");
        let name = name.to_string();
        self.db
            .call_blocking(move |c| db::insert_user(c, &name, &email))
            .unwrap()
            .id
    }

    /// A new val of `owner`; returns its id.
    pub fn val(&self, owner: &str, name: &str) -> String {
        let (owner, name) = (owner.to_string(), name.to_string());
        let scopes = Scopes::val_default().to_string();
        self.db
            .call_blocking(move |c| db::insert_val(c, &owner, &name, "public", "", &scopes))
            .unwrap()
    }

    /// A REST caller: `user` with a personal token holding `scopes`.
    pub fn principal(&self, user: &str, scopes: &[Scope]) -> Principal {
        Principal {
            user_id: user.into(),
            username: user.into(),
            scopes: scopes.iter().copied().collect(),
            token_id: "test-token".into(),
            call_of_val: None,
            usage: Default::default(),
        }
    }

    /// A call of `owner`'s val `val` holding `scopes`, for ten seconds.
    pub fn grant(&self, owner: &str, val: &str, scopes: &[Scope]) -> Grant {
        let call = CallOf {
            owner_id: owner,
            owner_name: owner,
            val_id: val,
            val_name: val,
            within: None,
            budget: super::RequestBudget::new(owner, &Default::default()),
        };
        let scopes = scopes.iter().copied().collect();
        Grant::mint(
            &self.call_tokens,
            &Default::default(),
            call,
            scopes,
            Duration::from_secs(10),
        )
    }
}

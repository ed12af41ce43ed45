//! A test environment for one capability's service, without a server or a
//! wasm build: a data directory with a real metadata database, users and
//! vals in it, and the two kinds of scope holder (a REST caller's
//! principal, a call's grant).

use std::time::Duration;

use super::{CallOf, Capability, CapsConfig, Grant, Settings};
use valbox_auth::CallTokens;
use valbox_model::{Principal, Privacy, Scope, Scopes};
use valbox_store::secrets::SecretBox;
use valbox_store::{NewToken, NewVal, Store};

pub struct TestEnv {
    /// The data directory, deleted when the environment is dropped.
    _dir: tempfile::TempDir,
    pub config: CapsConfig,
    pub store: Store,
    pub secrets: SecretBox,
    pub call_tokens: CallTokens,
}

impl TestEnv {
    pub fn new() -> Self {
        Self::with_config(|_| {})
    }

    /// An environment whose config `tune` adjusts first (a setting, say).
    pub fn with_config(tune: impl FnOnce(&mut CapsConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let limits = Default::default();
        let mut config =
            CapsConfig::new(dir.path().to_path_buf(), &limits, Default::default(), None);
        tune(&mut config);
        let store = valbox_store::sqlite::open(&dir.path().join("valbox.db")).unwrap();
        let secrets = SecretBox::load_or_create(&dir.path().join("secret.key")).unwrap();
        Self {
            _dir: dir,
            config,
            store,
            secrets,
            call_tokens: CallTokens::default(),
        }
    }

    /// Capability `C`'s service, built as the server builds it.
    pub fn open<C: Capability>(&self) -> C {
        C::open(&Settings {
            config: &self.config,
            store: &self.store,
            secrets: &self.secrets,
        })
        .unwrap()
    }

    /// A new user; returns its id.
    pub async fn user(&self, name: &str) -> String {
        let email = format!("{name}@example.com");
        let token = NewToken {
            name: "test".into(),
            hash: format!("hash-of-{name}"),
            scopes: Scopes::all(),
            expires_at: None,
        };
        let (user, _) = self.store.users.create(name, &email, token).await.unwrap();
        user.id
    }

    /// A new val of `owner`; returns its id.
    pub async fn val(&self, owner: &str, name: &str) -> String {
        let val = NewVal {
            owner_id: owner.into(),
            name: name.into(),
            privacy: Privacy::Public,
            description: String::new(),
            scopes: Scopes::val_default(),
        };
        self.store.vals.create(val).await.unwrap().id
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

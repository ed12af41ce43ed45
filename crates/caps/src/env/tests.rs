//! The env service on its own: values sealed and read back per val, keys
//! and sizes checked. Who may manage a val's vars is the server's to
//! decide (`services::env_vars`, tested end to end).

use super::{Env, EnvError, MAX_VALUE_LEN};
use crate::testing::TestEnv;

#[tokio::test]
async fn the_owner_sets_and_the_val_reads() {
    let env = TestEnv::new();
    let vars: Env = env.open();
    let alice = env.user("alice").await;
    let val = env.val(&alice, "v").await;
    vars.set(&val, "API_KEY".into(), "s3cret".into(), None)
        .await
        .unwrap();
    let listed = vars.list(&val).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "API_KEY");
    let values = vars.values(&val).await.unwrap();
    assert_eq!(values["API_KEY"], "s3cret");
    let other = env.val(&alice, "w").await;
    assert!(vars.values(&other).await.unwrap().is_empty());
}

#[tokio::test]
async fn reserved_keys_and_large_values_are_refused() {
    let env = TestEnv::new();
    let vars: Env = env.open();
    let alice = env.user("alice").await;
    let val = env.val(&alice, "v").await;
    let reserved = vars
        .set(&val, "valtown".into(), "v".into(), None)
        .await
        .unwrap_err();
    assert!(matches!(reserved, EnvError::InvalidKey(_)), "{reserved}");
    let large = vars
        .set(&val, "K".into(), "v".repeat(MAX_VALUE_LEN + 1), None)
        .await
        .unwrap_err();
    assert!(matches!(large, EnvError::TooLarge), "{large}");
    assert!(vars.list(&val).await.unwrap().is_empty());
}

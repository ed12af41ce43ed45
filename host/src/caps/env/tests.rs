//! The env service on its own: only the val's owner, with the scope, sets
//! and lists; a call reads its own val's values.

use super::Env;
use crate::auth::Scope::{EnvRead, EnvWrite};
use crate::caps::testing::TestEnv;

#[tokio::test]
async fn the_owner_sets_and_the_val_reads() {
    let env = TestEnv::new();
    let vars: Env = env.open();
    let alice = env.user("alice");
    let val = env.val(&alice, "v");
    let owner = env.principal(&alice, &[EnvRead, EnvWrite]);
    vars.set(&owner, &val, "API_KEY".into(), "s3cret".into(), None)
        .await
        .unwrap();
    let listed = vars.list(&owner, &val).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "API_KEY");
    let values = vars.values(&val).await.unwrap();
    assert_eq!(values["API_KEY"], "s3cret");
    let other = env.val(&alice, "w");
    assert!(vars.values(&other).await.unwrap().is_empty());
}

#[tokio::test]
async fn others_and_narrow_tokens_are_refused() {
    let env = TestEnv::new();
    let vars: Env = env.open();
    let (alice, bob) = (env.user("alice"), env.user("bob"));
    let val = env.val(&alice, "v");
    let bob = env.principal(&bob, &[EnvRead, EnvWrite]);
    let not_found = vars.list(&bob, &val).await.unwrap_err();
    assert_eq!(not_found.status, 404);
    let reader = env.principal(&alice, &[EnvRead]);
    let refused = vars
        .set(&reader, &val, "K".into(), "v".into(), None)
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403);
    let owner = env.principal(&alice, &[EnvWrite]);
    let reserved = vars
        .set(&owner, &val, "valtown".into(), "v".into(), None)
        .await
        .unwrap_err();
    assert_eq!(reserved.status, 400);
}

#[tokio::test]
async fn a_calls_token_cannot_change_its_own_val() {
    let env = TestEnv::new();
    let vars: Env = env.open();
    let alice = env.user("alice");
    let val = env.val(&alice, "v");
    let mut call = env.principal(&alice, &[EnvWrite]);
    call.call_of_val = Some(val.clone());
    let refused = vars
        .set(&call, &val, "K".into(), "v".into(), None)
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403);
}

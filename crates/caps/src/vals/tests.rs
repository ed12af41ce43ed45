//! The vals service on its own: the scope, the name and the depth are
//! checked before the call service is asked.

use std::time::{Duration, Instant};

use super::Vals;
use crate::testing::TestEnv;
use crate::{CallOf, Grant, RequestBudget, Within};
use valbox_model::Scope;
use valbox_runtime::Input;
use valbox_runtime::bindings::types::Error;

fn grant_at(env: &TestEnv, owner: &str, scopes: &[Scope], depth: Option<u8>) -> Grant {
    let call = CallOf {
        owner_id: owner,
        owner_name: owner,
        val_id: "val",
        val_name: "val",
        within: depth.map(|depth| Within {
            deadline: Instant::now() + Duration::from_secs(1),
            depth,
            budget: RequestBudget::new(owner, &Default::default()),
        }),
        budget: RequestBudget::new(owner, &Default::default()),
    };
    let scopes = scopes.iter().copied().collect();
    let usage = Default::default();
    Grant::mint(
        &env.call_tokens,
        &usage,
        call,
        scopes,
        Duration::from_secs(10),
    )
}

fn script() -> Input {
    Input::Script("[]".into())
}

#[tokio::test]
async fn calling_needs_val_read_and_a_user_slash_val_name() {
    let env = TestEnv::new();
    let vals: Vals = env.open();
    let mut none = grant_at(&env, "alice", &[], None);
    let refused = vals.call(&mut none, "bob/x", script()).await;
    assert!(matches!(refused, Err(Error::Denied(m)) if m.contains("val:read")));
    assert_eq!(none.denials(), [Scope::ValRead]);
    let mut reader = grant_at(&env, "alice", &[Scope::ValRead], None);
    for bad in ["bob", "/x", "bob/", "a/b/c", ""] {
        let refused = vals.call(&mut reader, bad, script()).await;
        assert!(matches!(refused, Err(Error::Invalid(_))), "{bad}");
    }
    // Not connected to a call service: unavailable, not a panic.
    let unconnected = vals.call(&mut reader, "bob/x", script()).await;
    assert!(matches!(unconnected, Err(Error::Unavailable(_))));
}

#[tokio::test]
async fn nested_calls_are_bounded_in_depth_and_time() {
    let env = TestEnv::new();
    let vals: Vals = env.open();
    let mut deep = grant_at(&env, "alice", &[Scope::ValRead], Some(super::MAX_DEPTH - 2));
    let refused = vals.call(&mut deep, "bob/x", script()).await;
    assert!(matches!(refused, Err(Error::Limit(m)) if m.contains("deep")));
    // A nested call ends no later than the call it runs within.
    let within = grant_at(&env, "alice", &[Scope::ValRead], Some(0));
    assert!(within.deadline() <= Instant::now() + Duration::from_secs(1));
    assert_eq!(within.as_within().depth, 1);
}

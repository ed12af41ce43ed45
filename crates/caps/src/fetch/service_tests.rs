//! The fetch service on its own: the scope and the allowlist are checked
//! before any connection (the URLs here are never reached).

use super::{Fetch, FetchCall};
use crate::testing::TestEnv;
use valbox_model::Scope;
use valbox_runtime::bindings::fetch::Request;
use valbox_runtime::bindings::types::Error;

fn get(url: &str) -> Request {
    Request {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

#[tokio::test]
async fn without_the_scope_nothing_is_fetched() {
    let env = TestEnv::new();
    let fetch: Fetch = env.open();
    let alice = env.user("alice").await;
    let mut call = env.grant(&alice, "val", &[Scope::BlobRead]);
    let mut state = FetchCall { allowlist: None };
    let deadline = call.deadline();
    let refused = fetch
        .fetch(&mut call, &mut state, get("http://192.0.2.1:9/"), deadline)
        .await;
    assert!(matches!(refused, Err(Error::Denied(m)) if m.contains("`fetch`")));
    assert_eq!(call.denials(), [Scope::Fetch]);
    assert_eq!(call.budget().fetches_taken(), 0);
}

#[tokio::test]
async fn a_host_outside_the_allowlist_is_refused() {
    let env = TestEnv::new();
    let fetch: Fetch = env.open();
    let alice = env.user("alice").await;
    let mut call = env.grant(&alice, "val", &[Scope::Fetch]);
    let mut state = FetchCall {
        allowlist: Some(vec!["api.example.com".into()]),
    };
    let deadline = call.deadline();
    let refused = fetch
        .fetch(
            &mut call,
            &mut state,
            get("http://elsewhere.example/"),
            deadline,
        )
        .await;
    assert!(matches!(refused, Err(Error::Denied(m)) if m.contains("allowlist")));
    assert_eq!(call.budget().fetches_taken(), 0);
}

//! The blob service on its own: scopes, owners' namespaces, bounds.

use super::{Blob, BlobError};
use crate::auth::Scope::{BlobRead, BlobWrite};
use crate::caps::testing::TestEnv;
use crate::runtime::bindings::types::Error;

#[tokio::test]
async fn each_operation_needs_its_scope() {
    let env = TestEnv::new();
    let blob: Blob = env.open();
    let alice = env.user("alice");
    let mut reader = env.principal(&alice, &[BlobRead]);
    let mut writer = env.principal(&alice, &[BlobRead, BlobWrite]);
    let mut nobody = env.principal(&alice, &[]);

    let refused = blob.set(&mut reader, "k".into(), b"v".to_vec()).await;
    assert!(matches!(refused, Err(BlobError::Denied(d)) if d.scope == BlobWrite));
    blob.set(&mut writer, "k".into(), b"v".to_vec())
        .await
        .unwrap();
    assert_eq!(
        blob.get(&mut reader, "k".into()).await.unwrap(),
        Some(b"v".to_vec())
    );
    let refused = blob.list(&mut nobody, String::new()).await;
    assert!(matches!(refused, Err(BlobError::Denied(d)) if d.scope == BlobRead));
    let refused = blob.delete(&mut reader, "k".into()).await;
    assert!(matches!(refused, Err(BlobError::Denied(_))));
}

#[tokio::test]
async fn owners_never_see_each_others_blobs() {
    let env = TestEnv::new();
    let blob: Blob = env.open();
    let (alice, bob) = (env.user("alice"), env.user("bob"));
    let mut a = env.principal(&alice, &[BlobRead, BlobWrite]);
    let mut b = env.principal(&bob, &[BlobRead, BlobWrite]);
    blob.set(&mut a, "secret".into(), b"a's".to_vec())
        .await
        .unwrap();
    assert_eq!(blob.get(&mut b, "secret".into()).await.unwrap(), None);
    assert!(blob.list(&mut b, String::new()).await.unwrap().is_empty());
    blob.delete(&mut b, "secret".into()).await.unwrap();
    assert!(blob.get(&mut a, "secret".into()).await.unwrap().is_some());
}

#[tokio::test]
async fn a_call_is_refused_as_a_denied_error_and_the_refusal_is_recorded() {
    let env = TestEnv::new();
    let blob: Blob = env.open();
    let alice = env.user("alice");
    let mut grant = env.grant(&alice, "val", &[BlobRead]);
    let err: Error = blob
        .set(&mut grant, "k".into(), Vec::new())
        .await
        .unwrap_err()
        .into();
    assert!(matches!(err, Error::Denied(m) if m.contains("blob:write")));
    assert_eq!(grant.denials(), [BlobWrite]);
}

#[tokio::test]
async fn a_blob_over_the_size_limit_is_refused() {
    let env = TestEnv::with_config(|c| c.limits.blob_bytes = 16);
    let blob: Blob = env.open();
    let alice = env.user("alice");
    let mut writer = env.principal(&alice, &[BlobWrite]);
    let refused = blob.set(&mut writer, "k".into(), vec![0; 17]).await;
    assert!(matches!(refused, Err(BlobError::TooLarge(16))));
    let err: Error = refused.unwrap_err().into();
    assert!(matches!(err, Error::Limit(_)));
}

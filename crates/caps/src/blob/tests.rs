//! The blob service on its own: scopes, owners' namespaces, bounds.

use super::{Blob, BlobError, Condition, Condition::Always};
use crate::testing::TestEnv;
use valbox_model::Scope::{BlobRead, BlobWrite};
use valbox_runtime::bindings::types::Error;

#[tokio::test]
async fn each_operation_needs_its_scope() {
    let env = TestEnv::new();
    let blob: Blob = env.open();
    let alice = env.user("alice").await;
    let mut reader = env.principal(&alice, &[BlobRead]);
    let mut writer = env.principal(&alice, &[BlobRead, BlobWrite]);
    let mut nobody = env.principal(&alice, &[]);

    let refused = blob
        .set(&mut reader, "k".into(), b"v".to_vec(), Always)
        .await;
    assert!(matches!(refused, Err(BlobError::Denied(d)) if d.scope == BlobWrite));
    blob.set(&mut writer, "k".into(), b"v".to_vec(), Always)
        .await
        .unwrap();
    let (value, _) = blob.get(&mut reader, "k".into()).await.unwrap().unwrap();
    assert_eq!(value, b"v");
    let refused = blob.list(&mut nobody, String::new()).await;
    assert!(matches!(refused, Err(BlobError::Denied(d)) if d.scope == BlobRead));
    let refused = blob.delete(&mut reader, "k".into()).await;
    assert!(matches!(refused, Err(BlobError::Denied(_))));
}

#[tokio::test]
async fn owners_never_see_each_others_blobs() {
    let env = TestEnv::new();
    let blob: Blob = env.open();
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let mut a = env.principal(&alice, &[BlobRead, BlobWrite]);
    let mut b = env.principal(&bob, &[BlobRead, BlobWrite]);
    blob.set(&mut a, "secret".into(), b"a's".to_vec(), Always)
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
    let alice = env.user("alice").await;
    let mut grant = env.grant(&alice, "val", &[BlobRead]);
    let err: Error = blob
        .set(&mut grant, "k".into(), Vec::new(), Always)
        .await
        .unwrap_err()
        .into();
    assert!(matches!(err, Error::Denied(m) if m.contains("blob:write")));
    assert_eq!(grant.denials(), [BlobWrite]);
}

#[tokio::test]
async fn a_blob_over_the_size_limit_is_refused() {
    let env = TestEnv::with_config(|c| c.blob.max_bytes = 16);
    let blob: Blob = env.open();
    let alice = env.user("alice").await;
    let mut writer = env.principal(&alice, &[BlobWrite]);
    let refused = blob.set(&mut writer, "k".into(), vec![0; 17], Always).await;
    assert!(matches!(refused, Err(BlobError::TooLarge(16))));
    let err: Error = refused.unwrap_err().into();
    assert!(matches!(err, Error::Limit(_)));
}

#[tokio::test]
async fn a_conditional_write_lands_only_on_the_version_it_read() {
    let env = TestEnv::new();
    let blob: Blob = env.open();
    let alice = env.user("alice").await;
    let mut w = env.principal(&alice, &[BlobRead, BlobWrite]);
    let first = blob
        .set(&mut w, "n".into(), b"1".to_vec(), Condition::IfAbsent)
        .await
        .unwrap();
    // Only if new: it exists now.
    let again = blob
        .set(&mut w, "n".into(), b"x".to_vec(), Condition::IfAbsent)
        .await;
    assert!(matches!(again, Err(BlobError::Conflict(Some(v))) if v == first));
    let second = blob
        .set(
            &mut w,
            "n".into(),
            b"2".to_vec(),
            Condition::IfMatch(first.clone()),
        )
        .await
        .unwrap();
    assert_ne!(second, first);
    // A writer still holding the first version loses, and learns the new one.
    let stale = blob
        .set(&mut w, "n".into(), b"3".to_vec(), Condition::IfMatch(first))
        .await;
    assert!(matches!(stale, Err(BlobError::Conflict(Some(v))) if v == second));
    let (value, version) = blob.get(&mut w, "n".into()).await.unwrap().unwrap();
    assert_eq!((value.as_slice(), &version), (&b"2"[..], &second));
    // A version is never reused, even after a delete and a new write.
    blob.delete(&mut w, "n".into()).await.unwrap();
    let fresh = blob
        .set(&mut w, "n".into(), b"1".to_vec(), Always)
        .await
        .unwrap();
    assert_ne!(fresh, second);
}

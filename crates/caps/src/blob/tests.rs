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

/// A writer that vanished after its object landed (its node died before
/// recording it): the room it reserved stays counted, and once the
/// reservation is stale the owner's next write records the blob.
#[tokio::test]
async fn a_write_whose_writer_vanished_is_recorded_later() {
    use valbox_objects::ObjectKey;
    let env = TestEnv::new();
    let blob: Blob = env.open();
    let alice = env.user("alice").await;
    let write = valbox_store::BlobWrite {
        owner_id: alice.clone(),
        key: "lost".into(),
        size: 5,
        blob_quota: blob.quota_bytes,
        room: blob.meter.room(&alice, 0).await,
    };
    blob.index.reserve(write).await.unwrap().unwrap();
    let object = ObjectKey::blob(&alice, "lost");
    let staged = blob.objects.stage(&object, "hello".into()).await.unwrap();
    staged.publish(Always).await.unwrap();
    let mut a = env.principal(&alice, &[BlobRead, BlobWrite]);
    assert!(blob.list(&mut a, String::new()).await.unwrap().is_empty());
    let counted = env.store.quota.stored(&alice).await.unwrap().blobs;
    assert_eq!(counted, valbox_store::MIN_BLOB_CHARGE);

    let index = blob.indexer();
    let later = valbox_model::now_ms() + valbox_store::RESERVATION_TTL_MS + 1;
    index.settle_stale(&alice, later).await.unwrap();
    let listed = blob.list(&mut a, String::new()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].key.as_str(), listed[0].size), ("lost", 5));
    let counted = env.store.quota.stored(&alice).await.unwrap().blobs;
    assert_eq!(counted, valbox_store::MIN_BLOB_CHARGE, "counted once");
}

//! What every object store must do, run against each: the file store in
//! this crate's tests, S3 (a real server on loopback) in `tests/`.

use bytes::Bytes;

use crate::{Condition, ObjectKey, Objects, Written};

pub async fn all(objects: &dyn Objects) {
    let key = ObjectKey::blob("conformance", &uuid::Uuid::new_v4().to_string());
    assert!(objects.get(&key).await.unwrap().is_none());
    assert!(objects.version(&key).await.unwrap().is_none());

    let put = |bytes: &'static [u8], condition: Condition| {
        let key = key.clone();
        async move {
            let staged = objects
                .stage(&key, Bytes::from_static(bytes))
                .await
                .unwrap();
            staged.publish(condition).await.unwrap()
        }
    };
    let stale = Condition::IfMatch("0123456789abcdef0123456789abcdef".into());
    assert_eq!(put(b"x", stale.clone()).await, Written::Conflict(None));
    let Written::Done(v1) = put(b"one", Condition::IfAbsent).await else {
        panic!("a write where there was nothing was refused");
    };
    assert_eq!(
        put(b"two", Condition::IfAbsent).await,
        Written::Conflict(Some(v1.clone()))
    );
    let got = objects.get(&key).await.unwrap().unwrap();
    assert_eq!(
        (&got.bytes[..], got.version.as_str()),
        (&b"one"[..], v1.as_str())
    );

    let Written::Done(v2) = put(b"two", Condition::IfMatch(v1.clone())).await else {
        panic!("a write over the version read was refused");
    };
    assert_ne!(v1, v2);
    assert_eq!(
        put(b"three", Condition::IfMatch(v1)).await,
        Written::Conflict(Some(v2.clone()))
    );
    assert_eq!(objects.version(&key).await.unwrap(), Some(v2));

    // Staged but never published: nothing changes.
    drop(
        objects
            .stage(&key, Bytes::from_static(b"lost"))
            .await
            .unwrap(),
    );
    assert_eq!(&objects.get(&key).await.unwrap().unwrap().bytes[..], b"two");

    let Written::Done(_) = put(b"four", Condition::Always).await else {
        panic!("an unconditional write was refused");
    };
    objects.delete(&key).await.unwrap();
    objects.delete(&key).await.unwrap();
    assert!(objects.get(&key).await.unwrap().is_none());
}

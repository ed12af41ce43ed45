//! What every object store must do, run against each: the file store in
//! this crate's tests, S3 (a real server on loopback) in `tests/`.

use bytes::Bytes;

use crate::{Condition, ObjectKey, Objects, Written};

pub async fn all(objects: &dyn Objects) {
    let key = ObjectKey::blob("conformance", &uuid::Uuid::new_v4().to_string());
    assert!(objects.get(&key).await.unwrap().is_none());
    assert!(objects.head(&key).await.unwrap().is_none());

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
    let head = objects.head(&key).await.unwrap().unwrap();
    assert_eq!(
        head,
        crate::Head {
            version: v2,
            size: 3
        }
    );

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
    racing_writes_over_one_version_land_once(objects).await;
}

/// Of conditional writes racing over one version, exactly one lands: the
/// compare-and-swap that counters and `set-if` rest on.
async fn racing_writes_over_one_version_land_once(objects: &dyn Objects) {
    let key = ObjectKey::blob("conformance", &uuid::Uuid::new_v4().to_string());
    let staged = objects
        .stage(&key, Bytes::from_static(b"base"))
        .await
        .unwrap();
    let Written::Done(base) = staged.publish(Condition::IfAbsent).await.unwrap() else {
        panic!("a write where there was nothing was refused");
    };
    let racers = (0..16).map(|i| {
        let (key, base) = (key.clone(), base.clone());
        async move {
            let staged = objects.stage(&key, Bytes::from(format!("racer {i}"))).await;
            staged
                .unwrap()
                .publish(Condition::IfMatch(base))
                .await
                .unwrap()
        }
    });
    let written = futures_util::future::join_all(racers).await;
    let landed = written
        .iter()
        .filter(|w| matches!(w, Written::Done(_)))
        .count();
    assert_eq!(landed, 1, "{written:?}");
    objects.delete(&key).await.unwrap();
}

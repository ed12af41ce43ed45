//! What every implementation of the store must do, as tests that take a
//! fresh [`Store`]: the embedded one runs them here, and another engine's
//! implementation runs the same ones (feature `conformance`).

use valbox_model::{Privacy, Scope, Scopes, Subject, Tally, Trigger, ValKind, now_ms};

use crate::{
    BlobRefusal, BlobWrite, LibraryRef, LogQuery, LogRecord, NewMail, NewSession, NewToken, NewVal,
    NewVersion, Refusal, Room, Store, StoreError, ValChange, ValRow,
};

/// Run every check on `store`, which must be empty.
pub async fn all(store: &Store) {
    users_are_unique_by_name(store).await;
    tokens_resolve_touch_and_revoke(store).await;
    vals_edit_under_a_guard(store).await;
    versions_number_up_and_fit_the_quota(store).await;
    blobs_reserve_room_and_record_what_the_object_store_holds(store).await;
    database_homes_are_leases_with_fencing(store).await;
    cron_runs_are_claimed_once_and_pause_after_failures(store).await;
    received_mail_is_queued_within_a_bound_and_claimed_once(store).await;
    the_outbox_keeps_a_daily_budget(store).await;
    a_sign_in_link_works_once(store).await;
    call_logs_are_trimmed_per_val(store).await;
    refusals_become_requests_that_can_be_granted(store).await;
}

fn token(name: &str) -> NewToken {
    NewToken {
        name: name.into(),
        hash: format!("hash-{name}-{}", crate::new_id()),
        scopes: Scopes::all(),
        expires_at: None,
    }
}

async fn user(store: &Store, name: &str) -> String {
    let email = format!("{name}@example.com");
    let (user, _) = store
        .users
        .create(name, &email, token("cli"))
        .await
        .unwrap();
    user.id
}

async fn val(store: &Store, owner: &str, name: &str) -> ValRow {
    let new = NewVal {
        owner_id: owner.into(),
        name: name.into(),
        privacy: Privacy::Public,
        description: String::new(),
        scopes: Scopes::val_default(),
    };
    store.vals.create(new).await.unwrap()
}

fn unlimited() -> Room {
    Room {
        quota: u64::MAX,
        outside: 0,
        adding: 0,
    }
}

fn version(val: &ValRow, sha256: &str, size: i64, room: Room) -> NewVersion {
    NewVersion {
        val_id: val.id.clone(),
        owner_id: val.owner_id.clone(),
        sha256: sha256.into(),
        size,
        kind: ValKind::Http,
        libraries: Vec::new(),
        room,
        edit: None,
    }
}

async fn users_are_unique_by_name(store: &Store) {
    let ann = user(store, "ann").await;
    let again = store.users.create("ann", "x@example.com", token("t")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let by_name = store.users.by_name("ann").await.unwrap().unwrap();
    assert_eq!(by_name.id, ann);
    assert!(store.users.by_id("nobody").await.unwrap().is_none());
}

async fn tokens_resolve_touch_and_revoke(store: &Store) {
    let bo = user(store, "bo").await;
    let new = token("deploy");
    let hash = new.hash.clone();
    let row = store.tokens.insert(&bo, new).await.unwrap();
    let (found, owner) = store
        .tokens
        .resolve(&hash, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id.as_str(), owner.id.as_str()),
        (row.id.as_str(), bo.as_str())
    );
    let touched = store.tokens.by_hash(&hash).await.unwrap().unwrap();
    assert!(touched.last_used_at.is_some());

    let narrow: Scopes = [Scope::ValRead].into_iter().collect();
    assert!(
        store
            .tokens
            .set_scopes(&bo, &row.id, &narrow)
            .await
            .unwrap()
    );
    assert!(store.tokens.revoke(&bo, &row.id).await.unwrap());
    assert!(!store.tokens.revoke(&bo, &row.id).await.unwrap());
    // A revoked token's scopes stay as they were.
    assert!(
        !store
            .tokens
            .set_scopes(&bo, &row.id, &Scopes::all())
            .await
            .unwrap()
    );
    assert!(store.tokens.live(&bo, &row.id).await.unwrap().is_none());
    assert_eq!(store.tokens.revoke_by_hash(&hash).await.unwrap(), None);
}

async fn vals_edit_under_a_guard(store: &Store) {
    let cy = user(store, "cy").await;
    let v = val(store, &cy, "app").await;
    let taken = NewVal {
        owner_id: cy.clone(),
        name: "app".into(),
        privacy: Privacy::Public,
        description: String::new(),
        scopes: Scopes::none(),
    };
    assert!(matches!(
        store.vals.create(taken).await,
        Err(StoreError::Conflict(_))
    ));
    let ann = store.users.by_name("ann").await.unwrap().unwrap();
    val(store, &ann.id, "app").await;

    let refuse: crate::Edit = Box::new(|_| Err(Refusal::Holds(Scope::ValWrite)));
    let refused = store.vals.edit(&v.id, refuse).await.unwrap().unwrap();
    assert!(matches!(refused, Err(Refusal::Holds(Scope::ValWrite))));
    let change = ValChange {
        privacy: Some(Privacy::Private),
        description: Some("mine".into()),
        fetch_allowlist: Some(Some(vec!["example.com".into()])),
        reuse: Some(50),
        ..ValChange::default()
    };
    let after = store
        .vals
        .edit(&v.id, crate::set(change))
        .await
        .unwrap()
        .unwrap();
    let after = after.unwrap();
    assert_eq!(after.privacy, Privacy::Private);
    assert_eq!(after.scopes, v.scopes);
    assert_eq!(after.fetch_allowlist, Some(vec!["example.com".to_string()]));
    assert_eq!((v.reuse, after.reuse), (0, 50));
    let any = ValChange {
        fetch_allowlist: Some(None),
        ..ValChange::default()
    };
    let after = store.vals.edit(&v.id, crate::set(any)).await.unwrap();
    assert_eq!(after.unwrap().unwrap().fetch_allowlist, None);
    assert!(
        store
            .vals
            .edit("gone", crate::set(ValChange::default()))
            .await
            .unwrap()
            .is_none()
    );

    let mine = store.vals.list(Some(&cy), Some(&cy), 10, 0).await.unwrap();
    assert_eq!(mine.len(), 1);
    let public = store.vals.list(None, None, 10, 0).await.unwrap();
    assert!(public.iter().all(|v| v.privacy == Privacy::Public));
    store.vals.delete(&v.id).await.unwrap();
    assert!(store.vals.by_id(&v.id).await.unwrap().is_none());
}

async fn versions_number_up_and_fit_the_quota(store: &Store) {
    let di = user(store, "di").await;
    let lib = val(store, &di, "lib").await;
    let app = val(store, &di, "web").await;
    let first = store.vals.add_version(version(&lib, "aa", 10, unlimited()));
    let (v0, _) = first.await.unwrap().unwrap().unwrap();
    assert_eq!(v0.version, 0);
    let mut new = version(&app, "bb", 10, unlimited());
    new.libraries = vec![LibraryRef {
        library_id: lib.id.clone(),
        version: Some(0),
        grants: [Scope::BlobRead].into_iter().collect(),
    }];
    let granted: Scopes = [Scope::Fetch].into_iter().collect();
    new.edit = Some(Box::new(move |_| {
        Ok(ValChange {
            scopes: Some(granted),
            ..ValChange::default()
        })
    }));
    let (v1, after) = store.vals.add_version(new).await.unwrap().unwrap().unwrap();
    assert_eq!((v1.version, after.scopes), (0, granted));
    assert_eq!(after.latest.unwrap().libraries[0].library_id, lib.id);
    let read = store.vals.version(&app.id, 0).await.unwrap().unwrap();
    assert_eq!(
        read.libraries[0].grants,
        [Scope::BlobRead].into_iter().collect()
    );
    assert!(store.vals.owner_has_build(&di, "bb").await.unwrap());
    assert!(!store.vals.owner_has_build("someone", "bb").await.unwrap());

    // 20 bytes are stored: 25 more do not fit a quota of 40 with 0 outside.
    let full = Room {
        quota: 40,
        outside: 0,
        adding: 25,
    };
    let refused = store.vals.add_version(version(&app, "cc", 25, full));
    let Some(Err(Refusal::Full(stored))) = refused.await.unwrap() else {
        panic!("a version past the quota was stored");
    };
    assert_eq!(stored.components, 20);
    assert_eq!(store.vals.versions(&app.id).await.unwrap().len(), 1);
    let fits = Room { adding: 20, ..full };
    let added = store.vals.add_version(version(&app, "cc", 20, fits));
    assert_eq!(added.await.unwrap().unwrap().unwrap().0.version, 1);
}

async fn blobs_reserve_room_and_record_what_the_object_store_holds(store: &Store) {
    let ed = user(store, "ed").await;
    let min = crate::MIN_BLOB_CHARGE;
    let write = |key: &str, size: u64| BlobWrite {
        owner_id: ed.clone(),
        key: key.into(),
        size,
        blob_quota: 3 * min,
        room: unlimited(),
    };
    let holds = |now: Option<(u64, &str)>| -> crate::Observe {
        let now = now.map(|(size, v)| (size, v.to_owned()));
        Box::new(move || Box::pin(async move { Ok(now) }))
    };
    let listed = async || -> Vec<(String, u64)> {
        let entries = store.blobs.list(&ed, "").await.unwrap();
        entries.into_iter().map(|e| (e.key, e.size)).collect()
    };

    // Reserved room counts as stored until it is settled or released.
    let first = store.blobs.reserve(write("k", 5)).await.unwrap().unwrap();
    assert_eq!(store.quota.stored(&ed).await.unwrap().blobs, min);
    let second = store.blobs.reserve(write("j", 5)).await.unwrap().unwrap();
    let third = store.blobs.reserve(write("i", 5)).await.unwrap().unwrap();
    assert!(matches!(
        store.blobs.reserve(write("h", 5)).await.unwrap(),
        Err(BlobRefusal::BlobQuota(_))
    ));
    store.blobs.release(second).await.unwrap();
    store.blobs.release(third).await.unwrap();
    // A reservation is stale once its writer has had time to finish.
    let now = now_ms();
    assert!(store.blobs.stale(&ed, now).await.unwrap().is_empty());
    let later = now + crate::RESERVATION_TTL_MS + 1;
    let stale = store.blobs.stale(&ed, later).await.unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!((stale[0].id, stale[0].key.as_str()), (first.id, "k"));

    // Settling records what the object store says, not what was asked.
    let settled = store
        .blobs
        .settle(&ed, "k", Some(first), holds(Some((7, "v1"))));
    settled.await.unwrap().unwrap();
    assert_eq!(listed().await, [("k".to_string(), 7)]);
    assert_eq!(store.quota.stored(&ed).await.unwrap().blobs, min);

    // Replacing a blob needs room only for the difference.
    let over = store.blobs.reserve(write("k", 2 * min)).await.unwrap();
    assert!(over.is_ok(), "replacing k was refused");
    assert!(matches!(
        store.blobs.reserve(write("other", 2 * min)).await.unwrap(),
        Err(BlobRefusal::BlobQuota(_))
    ));
    store.blobs.release(over.unwrap()).await.unwrap();

    // The object store down: nothing is recorded.
    let down: crate::Observe =
        Box::new(|| Box::pin(async { Err(BlobRefusal::Unavailable("down".into())) }));
    let kept = store.blobs.settle(&ed, "k", None, down).await.unwrap();
    assert!(matches!(kept, Err(BlobRefusal::Unavailable(_))));
    assert_eq!(listed().await, [("k".to_string(), 7)]);
    // A settle that finds no object forgets the key.
    let gone = store.blobs.settle(&ed, "k", None, holds(None));
    gone.await.unwrap().unwrap();
    assert!(listed().await.is_empty());
    assert_eq!(store.quota.stored(&ed).await.unwrap().blobs, 0);
}

async fn database_homes_are_leases_with_fencing(store: &Store) {
    let gus = user(store, "gus").await;
    let node = |id: &str| crate::Node {
        id: id.into(),
        address: format!("{id}.internal:7000"),
    };
    let (one, two) = (node("one"), node("two"));
    let ttl = std::time::Duration::from_millis(300);
    let homes = &store.homes;

    // The first claim takes the lease; another node finds its holder.
    let first = homes.claim(&gus, &one, ttl).await.unwrap();
    assert_eq!((&first.node, first.fencing), (&one, 1));
    assert_eq!((first.replica, first.served_by), (None, None));
    assert!(first.remaining > std::time::Duration::ZERO && first.remaining <= ttl);
    let seen = homes.claim(&gus, &two, ttl).await.unwrap();
    assert_eq!((&seen.node, seen.fencing), (&one, 1));
    // The holder claiming again keeps its number and gives its address
    // now (restarted elsewhere, it is still reached).
    let moved = crate::Node {
        address: "one.elsewhere:7000".into(),
        ..one.clone()
    };
    let again = homes.claim(&gus, &moved, ttl).await.unwrap();
    assert_eq!((&again.node, again.fencing), (&moved, 1));
    // Only the holder records the database's size.
    homes.record_size(&gus, &two.id, 999).await.unwrap();
    assert_eq!(homes.size(&gus).await.unwrap(), 0);
    homes.record_size(&gus, &one.id, 4096).await.unwrap();
    assert_eq!(homes.size(&gus).await.unwrap(), 4096);
    assert_eq!(homes.claim(&gus, &two, ttl).await.unwrap().size, 4096);
    // Only the holder renews it.
    assert_eq!(homes.renew(&one.id, ttl).await.unwrap(), [(gus.clone(), 1)]);
    assert!(homes.renew(&two.id, ttl).await.unwrap().is_empty());

    // Run out, it goes to the next claimant with a higher number, and the
    // old holder can no longer renew it.
    homes.record_replica(&gus, &one.id, 1, "1-a").await.unwrap();
    homes.record_serving(&gus, &one.id, 1).await.unwrap();
    tokio::time::sleep(ttl * 2).await;
    let taken = homes.claim(&gus, &two, ttl).await.unwrap();
    assert_eq!((&taken.node, taken.fencing), (&two, 2));
    // The new holder learns which replica to restore, and who served last.
    assert_eq!(taken.replica.as_deref(), Some("1-a"));
    assert_eq!(taken.served_by.as_deref(), Some("one"));
    assert!(homes.renew(&one.id, ttl).await.unwrap().is_empty());
    // Replicas and serving are recorded only by the holder, for its own
    // number.
    homes.record_replica(&gus, &one.id, 2, "2-x").await.unwrap();
    homes.record_replica(&gus, &two.id, 1, "1-x").await.unwrap();
    homes.record_serving(&gus, &one.id, 2).await.unwrap();
    homes.record_serving(&gus, &two.id, 1).await.unwrap();
    let seen = homes.claim(&gus, &two, ttl).await.unwrap();
    let recorded = (seen.replica.as_deref(), seen.served_by.as_deref());
    assert_eq!(recorded, (Some("1-a"), Some("one")));
    homes.record_replica(&gus, &two.id, 2, "2-b").await.unwrap();
    homes.record_serving(&gus, &two.id, 2).await.unwrap();
    let seen = homes.claim(&gus, &two, ttl).await.unwrap();
    let recorded = (seen.replica.as_deref(), seen.served_by.as_deref());
    assert_eq!(recorded, (Some("2-b"), Some("two")));
    assert_eq!(
        homes.last_served_by(&two.id).await.unwrap(),
        vec![gus.clone()]
    );
    assert!(homes.last_served_by(&one.id).await.unwrap().is_empty());

    // Released by its holder (no one else), it is taken at once.
    homes.release(&gus, &one.id).await.unwrap();
    assert_eq!(homes.claim(&gus, &one, ttl).await.unwrap().node, two);
    homes.release(&gus, &two.id).await.unwrap();
    let back = homes.claim(&gus, &one, ttl).await.unwrap();
    assert_eq!((&back.node, back.fencing), (&one, 3));
}

async fn cron_runs_are_claimed_once_and_pause_after_failures(store: &Store) {
    let hal = user(store, "hal").await;
    let (tick, tock) = (
        val(store, &hal, "tick").await,
        val(store, &hal, "tock").await,
    );
    let schedules = &store.schedules;
    let due = now_ms() - 10;
    assert!(
        schedules
            .set(&tick.id, &hal, ("every 1s", due), 1)
            .await
            .unwrap()
    );
    // One schedule allowed: another val's is refused, this one's changes.
    assert!(
        !schedules
            .set(&tock.id, &hal, ("every 1s", due), 1)
            .await
            .unwrap()
    );
    assert!(
        schedules
            .set(&tick.id, &hal, ("every 1s", due), 1)
            .await
            .unwrap()
    );
    assert!(schedules.get(&tick.id).await.unwrap().is_some());
    assert!(schedules.get(&tock.id).await.unwrap().is_none());
    let end = |ok: Option<bool>| crate::RunEnd {
        started_ms: now_ms(),
        next_run_ms: now_ms() - 1,
        ok,
        pause_after: 5,
    };

    // Claimed once: a second claim finds it held.
    let now = now_ms();
    let claimed = schedules.claim_due(now, now + 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].val_id.as_str(), claimed[0].next_run_ms),
        (tick.id.as_str(), due)
    );
    assert!(
        schedules
            .claim_due(now, now + 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A run going on extends its hold; its claim's token moves with it.
    let mut first = claimed[0].clone();
    assert!(schedules.extend(&first, now + 120_000).await.unwrap());
    assert!(!schedules.extend(&first, now + 180_000).await.unwrap());
    first.running_until = Some(now + 120_000);
    // Held by a run that died, it is claimed again once the hold ends, and
    // the dead run's finish no longer counts.
    let later = now + 120_001;
    let again = schedules
        .claim_due(later, later + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert!(!schedules.finish(&first, end(Some(false))).await.unwrap());
    assert_eq!(schedules.get(&tick.id).await.unwrap().unwrap().failures, 0);

    // A run the platform could not start does not count; each failure
    // does, and the fifth in a row pauses it.
    assert!(!schedules.finish(&again[0], end(None)).await.unwrap());
    let mut row = schedules
        .claim_due(now_ms(), now_ms() + 60_000, 10)
        .await
        .unwrap()[0]
        .clone();
    assert_eq!(row.failures, 0);
    for failures in 1..=5 {
        let paused = schedules.finish(&row, end(Some(false))).await.unwrap();
        assert_eq!(paused, failures == 5, "after {failures} failures");
        let now = now_ms();
        let claimed = schedules.claim_due(now, now + 60_000, 10).await.unwrap();
        if failures < 5 {
            row = claimed[0].clone();
            assert_eq!(row.failures, failures);
        } else {
            assert!(claimed.is_empty(), "a paused schedule is not run");
        }
    }
    let stored = schedules.get(&tick.id).await.unwrap().unwrap();
    assert!(stored.paused_at.is_some() && stored.last_run_ms.is_some());
    schedules.unpause(&tick.id, now_ms() - 1).await.unwrap();
    let now = now_ms();
    let claimed = schedules.claim_due(now, now + 60_000, 10).await.unwrap();
    assert_eq!((claimed.len(), claimed[0].failures), (1, 0));
    // Unpausing a schedule that is not paused changes nothing.
    schedules.unpause(&tick.id, 1).await.unwrap();
    assert_ne!(
        schedules.get(&tick.id).await.unwrap().unwrap().next_run_ms,
        1
    );
    // Changed while it runs: the run's finish keeps the new next time.
    assert!(
        schedules
            .set(&tick.id, &hal, ("every 2s", now + 5_000), 1)
            .await
            .unwrap()
    );
    let ended = crate::RunEnd {
        next_run_ms: now + 1_000,
        ..end(Some(true))
    };
    assert!(!schedules.finish(&claimed[0], ended).await.unwrap());
    let stored = schedules.get(&tick.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.next_run_ms, stored.running_until),
        (now + 5_000, None)
    );
    schedules.remove(&tick.id).await.unwrap();
    assert!(schedules.get(&tick.id).await.unwrap().is_none());
}

async fn the_outbox_keeps_a_daily_budget(store: &Store) {
    let fi = user(store, "fi").await;
    let mail = |platform: bool| NewMail {
        owner_id: fi.clone(),
        val_id: None,
        message: "{}".into(),
        platform,
        daily_limit: 2,
    };
    let first = store.outbox.enqueue(mail(false)).await.unwrap().unwrap();
    store.outbox.enqueue(mail(false)).await.unwrap().unwrap();
    assert!(store.outbox.enqueue(mail(false)).await.unwrap().is_err());
    // The platform's own mail has a budget of its own.
    store.outbox.enqueue(mail(true)).await.unwrap().unwrap();
    let due = store.outbox.due(10).await.unwrap();
    assert_eq!(due.len(), 3);
    assert_eq!(due[0].to, "fi@example.com");
    store.outbox.mark_sent(&first).await.unwrap();
    let later = due[1].id.clone();
    store
        .outbox
        .mark_failed(&later, "busy", Some(60_000))
        .await
        .unwrap();
    // The third is still claimed by the first `due`: nobody sends it twice.
    assert!(store.outbox.due(10).await.unwrap().is_empty());
    assert_eq!(store.outbox.queued().await.unwrap(), 2);
    assert_eq!(store.outbox.list(&fi).await.unwrap().len(), 3);
}

async fn a_sign_in_link_works_once(store: &Store) {
    let gu = user(store, "gu").await;
    let session = |hash: &str| NewSession {
        hash: hash.into(),
        csrf: "csrf".into(),
        expires_at: now_ms() + 60_000,
    };
    store
        .sessions
        .add_link(&gu, "link", now_ms() + 60_000)
        .await
        .unwrap();
    store
        .sessions
        .add_link(&gu, "old", now_ms() - 1)
        .await
        .unwrap();
    // At most two links in the window: the two above count (the expired
    // one too: it was made in the window).
    let since = now_ms() - 60_000;
    let within = store
        .sessions
        .add_link_within(&gu, "third", now_ms() + 60_000, 2, since);
    assert!(!within.await.unwrap());
    let within = store
        .sessions
        .add_link_within(&gu, "third", now_ms() + 60_000, 3, since);
    assert!(within.await.unwrap());
    let opened = store.sessions.sign_in("link", session("s1")).await.unwrap();
    assert_eq!(opened.unwrap().user_id, gu);
    assert!(
        store
            .sessions
            .sign_in("link", session("s2"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .sessions
            .sign_in("old", session("s3"))
            .await
            .unwrap()
            .is_none()
    );
    let live = store.sessions.by_hash("s1").await.unwrap().unwrap();
    assert_eq!(store.sessions.list(&gu).await.unwrap().len(), 1);
    assert_eq!(store.sessions.revoke(&gu, Some(&live.id)).await.unwrap(), 1);
    assert!(store.sessions.list(&gu).await.unwrap().is_empty());
}

async fn call_logs_are_trimmed_per_val(store: &Store) {
    let ho = user(store, "ho").await;
    let v = val(store, &ho, "logged").await;
    let record = |n: i64| LogRecord {
        owner_id: ho.clone(),
        val_id: v.id.clone(),
        val_name: v.name.clone(),
        version: 0,
        trigger: Trigger::Http,
        caller: None,
        time_ns: n,
        status: 200,
        duration_us: 1,
        cpu_us: 1,
        fuel_used: 1,
        stdout: "x".repeat(100),
        stderr: String::new(),
        error: None,
    };
    let each = record(0).bytes();
    let batch: Vec<LogRecord> = (1..=10).map(record).collect();
    // Room for 8: past it, the oldest go down to three quarters (6).
    store.logs.append(batch, each * 8).await.unwrap();
    let query = LogQuery {
        owner_id: ho.clone(),
        val_id: Some(v.id.clone()),
        start: None,
        end: None,
        ascending: true,
        limit: 100,
        page_bytes: i64::MAX,
    };
    let (kept, cut) = store.logs.list(query.clone()).await.unwrap();
    assert!(!cut);
    let times: Vec<i64> = kept.iter().map(|l| l.record.time_ns).collect();
    assert_eq!(times, (5..=10).collect::<Vec<_>>());
    assert_eq!(store.quota.stored(&ho).await.unwrap().logs, 6 * each as u64);
    let paged = LogQuery {
        page_bytes: each * 2,
        ..query
    };
    let (page, cut) = store.logs.list(paged).await.unwrap();
    assert_eq!((page.len(), cut), (2, true));
    assert_eq!(store.logs.recent(&v.id, 1).await.unwrap()[0].time_ms, 0);
    while store.logs.sweep(8).await.unwrap() {}
    assert_eq!(store.logs.recent(&v.id, 10).await.unwrap().len(), 3);
}

async fn refusals_become_requests_that_can_be_granted(store: &Store) {
    let io = user(store, "io").await;
    let v = val(store, &io, "asker").await;
    let refused = Tally {
        used: 0,
        last_used_ms: 0,
        denied: 2,
        last_denied_ms: now_ms(),
    };
    let batch = vec![(Subject::Val(v.id.clone()), Scope::EmailWrite, refused)];
    store.scopes.record(batch).await.unwrap();
    let usage = store
        .scopes
        .usage_of(&Subject::Val(v.id.clone()))
        .await
        .unwrap();
    assert_eq!(usage[0].denied_count, 2);
    let requests = store.scopes.requests_of(&io).await.unwrap();
    assert_eq!(requests.len(), 1);
    let decided = store
        .scopes
        .decide(&requests[0].id, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(decided.status, "granted");
    let after = store.vals.by_id(&v.id).await.unwrap().unwrap();
    assert!(after.scopes.has(Scope::EmailWrite));
    let holders = store.scopes.holdings().await.unwrap();
    assert!(
        holders
            .iter()
            .any(|h| h.subject == Subject::Val(v.id.clone()))
    );
    let email: Scopes = [Scope::EmailWrite].into_iter().collect();
    let subject = Subject::Val(v.id.clone());
    store.scopes.remove_scopes(&subject, &email).await.unwrap();
    let after = store.vals.by_id(&v.id).await.unwrap().unwrap();
    assert!(!after.scopes.has(Scope::EmailWrite));
}

async fn received_mail_is_queued_within_a_bound_and_claimed_once(store: &Store) {
    let ida = user(store, "ida").await;
    let inbox = val(store, &ida, "inbox").await;
    let queue = &store.mail_queue;
    let received = now_ms() - 10;
    let mail = |raw: Vec<u8>| crate::IncomingMail {
        val_id: inbox.id.clone(),
        owner_id: ida.clone(),
        envelope_from: "ann@example.com".into(),
        envelope_to: "ida.inbox@mail.test".into(),
        raw,
        received_ms: received,
    };
    // Bytes exactly as received (not UTF-8, a MiB), within the val's bound.
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let small = b"\xff\x00ab\r\n.".to_vec();
    let bound = (big.len() + small.len()) as i64;
    let first = queue.enqueue(mail(big.clone()), bound).await.unwrap();
    let second = queue.enqueue(mail(small.clone()), bound).await.unwrap();
    assert!(first.is_some() && second.is_some());
    // One byte over: refused, and nothing stored.
    assert_eq!(
        queue.enqueue(mail(b"c".to_vec()), bound).await.unwrap(),
        None
    );
    let queued = queue.queued_for(&inbox.id).await.unwrap();
    assert_eq!((queued.messages, queued.bytes), (2, bound));
    assert!(queue.queued_total().await.unwrap().bytes >= bound);

    // Claimed once; a second claim finds both held.
    let now = now_ms();
    let hold = now + 60_000;
    let mut claimed = queue.claim_due(now, hold, 10).await.unwrap();
    assert!(queue.claim_due(now, hold, 10).await.unwrap().is_empty());
    claimed.sort_by_key(|m| m.raw.len());
    let queued_as = |id: &Option<String>, raw: &[u8]| crate::QueuedMail {
        id: id.clone().unwrap(),
        val_id: inbox.id.clone(),
        owner_id: ida.clone(),
        envelope_from: "ann@example.com".into(),
        envelope_to: "ida.inbox@mail.test".into(),
        raw: raw.to_vec(),
        received_ms: received,
        attempts: 0,
        next_attempt_ms: received,
        running_until: Some(hold),
        last_error: None,
    };
    assert_eq!(
        claimed,
        [queued_as(&second, &small), queued_as(&first, &big)]
    );
    let (a, b) = (&claimed[0], &claimed[1]);

    // A failure counts and defers; a delivery that did not run only defers.
    assert!(queue.retry(a, now + 10, "no table").await.unwrap());
    assert!(queue.release(b, now + 20).await.unwrap());
    assert!(queue.claim_due(now + 9, hold, 10).await.unwrap().is_empty());
    // (Later, so held until later: a claim's hold is its token.)
    let again = queue.claim_due(now + 20, hold + 20, 10).await.unwrap();
    let state = |m: &crate::QueuedMail| (m.id.clone(), m.attempts, m.last_error.clone());
    assert_eq!(
        again.iter().map(state).collect::<Vec<_>>(),
        [
            (a.id.clone(), 1, Some("no table".into())),
            (b.id.clone(), 0, None)
        ]
    );
    // The first claim no longer holds them: its retry, release and
    // removal are void.
    assert!(!queue.retry(a, now, "late").await.unwrap());
    assert!(!queue.release(b, now).await.unwrap());
    assert!(!queue.remove(a).await.unwrap());
    // A hold that ran out (a node died mid-delivery) is claimed again, and
    // the dead claim's word no longer counts.
    let later = hold + 21;
    let retaken = queue.claim_due(later, later + 60_000, 10).await.unwrap();
    assert_eq!(retaken.len(), 2);
    assert_eq!(
        (retaken[0].id.as_str(), retaken[0].attempts),
        (a.id.as_str(), 1)
    );
    assert!(!queue.retry(&again[0], later, "dead").await.unwrap());
    assert!(!queue.remove(&again[0]).await.unwrap());
    assert!(queue.remove(&retaken[0]).await.unwrap());
    let left = queue.queued_for(&inbox.id).await.unwrap();
    assert_eq!((left.messages, left.bytes), (1, big.len() as i64));
    // A deleted val's mail goes with it.
    store.vals.delete(&inbox.id).await.unwrap();
    assert_eq!(
        queue.queued_for(&inbox.id).await.unwrap(),
        crate::QueuedFor::default()
    );
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_embedded_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::sqlite::open(&dir.path().join("valbox.db")).unwrap();
        super::all(&store).await;
    }
}

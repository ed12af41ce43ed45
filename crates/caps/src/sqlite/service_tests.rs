//! The SQLite service on its own: which scope each statement needs, for a
//! REST caller and for a call alike.

use super::Sqlite;
use super::store::{Args, SqlError, Statement};
use crate::testing::TestEnv;
use valbox_model::Scope::{SqliteRead, SqliteWrite};

fn sql(text: &str) -> Statement {
    Statement {
        sql: text.into(),
        args: Args::Positional(Vec::new()),
    }
}

#[tokio::test]
async fn reads_need_sqlite_read_and_writes_sqlite_write() {
    let env = TestEnv::new();
    let db: Sqlite = env.open();
    let alice = env.user("alice").await;
    let bounds = || db.rest_bounds();
    let mut writer = env.principal(&alice, &[SqliteRead, SqliteWrite]);
    let mut reader = env.principal(&alice, &[SqliteRead]);
    let mut nobody = env.principal(&alice, &[]);

    db.execute(&mut writer, sql("CREATE TABLE t (x)"), bounds(), None)
        .await
        .unwrap();
    let refused = db
        .execute(&mut reader, sql("INSERT INTO t VALUES (1)"), bounds(), None)
        .await;
    assert!(matches!(refused, Err(SqlError::Denied(d)) if d.scope == SqliteWrite));
    let rows = db
        .execute(&mut reader, sql("SELECT count(*) FROM t"), bounds(), None)
        .await
        .unwrap();
    assert_eq!(rows.rows.len(), 1);
    let refused = db
        .execute(&mut nobody, sql("SELECT 1"), bounds(), None)
        .await;
    assert!(matches!(refused, Err(SqlError::Denied(d)) if d.scope == SqliteRead));
}

#[tokio::test]
async fn a_calls_refusals_are_recorded_for_its_log() {
    let env = TestEnv::new();
    let db: Sqlite = env.open();
    let alice = env.user("alice").await;
    let mut grant = env.grant(&alice, "val", &[SqliteRead]);
    let bounds = db.bounds(grant.deadline());
    let refused = db
        .execute(&mut grant, sql("CREATE TABLE t (x)"), bounds, None)
        .await;
    assert!(matches!(refused, Err(SqlError::Denied(_))));
    assert_eq!(grant.denials(), [SqliteWrite]);
}

#[tokio::test]
async fn each_owner_has_a_database_of_its_own() {
    let env = TestEnv::new();
    let db: Sqlite = env.open();
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let mut a = env.principal(&alice, &[SqliteRead, SqliteWrite]);
    let mut b = env.principal(&bob, &[SqliteRead, SqliteWrite]);
    db.execute(
        &mut a,
        sql("CREATE TABLE secrets (x)"),
        db.rest_bounds(),
        None,
    )
    .await
    .unwrap();
    let missing = db
        .execute(&mut b, sql("SELECT * FROM secrets"), db.rest_bounds(), None)
        .await;
    assert!(matches!(missing, Err(SqlError::Sql(m)) if m.contains("no such table")));
}

#[tokio::test]
async fn a_value_larger_than_a_blob_is_refused() {
    let env = TestEnv::with_config(|c| c.sqlite.max_value_bytes = 1024);
    let db: Sqlite = env.open();
    let alice = env.user("alice").await;
    let mut who = env.principal(&alice, &[SqliteRead]);
    let refused = db
        .execute(
            &mut who,
            sql("SELECT zeroblob(4096)"),
            db.rest_bounds(),
            None,
        )
        .await;
    assert!(
        matches!(refused, Err(SqlError::TooLarge(_) | SqlError::Sql(_))),
        "{:?}",
        refused.err()
    );
}

//! Unit tests of `store`: no server, no wasm build.

use super::*;
use crate::sqlite::statement::MAX_VIEWS_AND_TRIGGERS;

const ALL: Access = Access {
    read: true,
    write: true,
};

fn sql(text: &str) -> Statement {
    Statement {
        sql: text.into(),
        args: Args::Positional(Vec::new()),
    }
}

fn bounds(within: Duration) -> Bounds {
    Bounds {
        deadline: Instant::now() + within,
        max_bytes: 1 << 20,
    }
}

#[test]
fn a_write_returning_past_the_budget_leaves_nothing_behind() {
    let (_dir, store) = roomy_store();
    let long = bounds(Duration::from_secs(10));
    store
        .execute("o", ALL, &sql("CREATE TABLE t (x)"), long)
        .unwrap();
    let insert = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                  WHERE i < 100) INSERT INTO t SELECT randomblob(100000) FROM n RETURNING x";
    let e = store.execute("o", ALL, &sql(insert), long).unwrap_err();
    assert!(matches!(e, SqlError::TooLarge(_)), "{e}");
    let rs = store
        .execute("o", ALL, &sql("SELECT count(*) FROM t"), long)
        .unwrap();
    assert_eq!(rs.rows, vec![vec![Value::Integer(0)]]);
}

#[test]
fn waiting_for_a_lock_stops_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::new(dir.path().to_path_buf(), 1 << 20, 1 << 20);
    let long = bounds(Duration::from_secs(10));
    store
        .execute("o", ALL, &sql("CREATE TABLE t (x)"), long)
        .unwrap();
    let holder = Connection::open(dir.path().join("o.sqlite3")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let e = store
        .execute(
            "o",
            ALL,
            &sql("INSERT INTO t VALUES (1)"),
            bounds(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(matches!(e, SqlError::Busy(_)), "{e}");
    // Well under BUSY_WAIT: the wait was cut to the deadline.
    assert!(started.elapsed() < Duration::from_millis(1500));
}

/// A store whose quota and temporary budget no test here reaches.
fn roomy_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::new(dir.path().to_path_buf(), 1 << 30, 1 << 30);
    (dir, store)
}

fn refused(store: &SqliteStore, text: &str) -> SqlError {
    let e = store
        .execute("o", ALL, &sql(text), bounds(Duration::from_secs(10)))
        .unwrap_err();
    eprintln!("{:.80} -> {e}", text);
    e
}

fn rows(store: &SqliteStore, text: &str) -> Vec<Vec<Value>> {
    store
        .execute("o", ALL, &sql(text), bounds(Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .rows
}

#[test]
fn functions_outside_the_allowlist_are_refused_by_name() {
    let (_dir, store) = roomy_store();
    for (text, name) in [
        ("SELECT hex(fts3_tokenizer('simple'))", "fts3_tokenizer"),
        ("SELECT load_extension('/tmp/x')", "load_extension"),
        (
            "SELECT sqlite_compileoption_get(0)",
            "sqlite_compileoption_get",
        ),
        ("SELECT fts5('x')", "fts5"),
        ("SELECT rtreenode(2, x'00')", "rtreenode"),
        (
            "SELECT sqlite_rename_table(1, 2, 3, 4, 5, 6, 7)",
            "sqlite_rename_table",
        ),
    ] {
        let e = refused(&store, text);
        assert!(
            matches!(&e, SqlError::Sql(m) if m.contains(name)),
            "{text}: {e}"
        );
    }
    // Bound parameters do not get past the authorizer either.
    let evil = Statement {
        sql: "SELECT fts3_tokenizer(?, ?)".into(),
        args: Args::Positional(vec![Value::Text("evil".into()), Value::Blob(vec![0x41; 8])]),
    };
    let e = store
        .batch(
            "o",
            ALL,
            &[evil],
            Mode::Write,
            bounds(Duration::from_secs(5)),
        )
        .unwrap_err();
    assert!(matches!(e, SqlError::Sql(_)), "{e}");
}

#[test]
fn unlisted_functions_fail_even_where_the_authorizer_is_not_asked() {
    let (_dir, store) = roomy_store();
    rows(
        &store,
        "CREATE TABLE d (a, b DEFAULT (sqlite_compileoption_get(0)), \
         c DEFAULT (fts5_source_id()))",
    );
    // Refused as unsafe in a schema, or as not allowed: never run.
    let e = refused(&store, "INSERT INTO d (a) VALUES (1)");
    assert!(matches!(e, SqlError::Sql(_)), "{e}");
}

#[test]
fn a_long_chain_of_views_or_ctes_cannot_overflow_the_stack() {
    let (_dir, store) = roomy_store();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let run = |text: String| {
        let store = store.clone();
        rt.block_on(on_sql_thread(move || {
            store.execute("o", ALL, &sql(&text), bounds(Duration::from_secs(20)))
        }))
    };
    let mut ctes: Vec<String> = vec!["c0(x) AS (SELECT 1)".into()];
    ctes.extend((1..10_000).map(|i| format!("c{i}(x) AS (SELECT x FROM c{})", i - 1)));
    let chain = format!("WITH {} SELECT x FROM c9999", ctes.join(", "));
    // Whether SQLite takes it or not, the server lives to answer.
    let _ = run(chain);
    run("CREATE TABLE t (x)".into()).unwrap();
    let views: Vec<Statement> = (0..MAX_VIEWS_AND_TRIGGERS)
        .map(|i| match i {
            0 => sql("CREATE VIEW v0 AS SELECT x FROM t"),
            i => sql(&format!("CREATE VIEW v{i} AS SELECT x FROM v{}", i - 1)),
        })
        .collect();
    let long = bounds(Duration::from_secs(60));
    store.batch("o", ALL, &views, Mode::Write, long).unwrap();
    let e = run("CREATE VIEW one_more AS SELECT 1".into()).unwrap_err();
    assert!(
        matches!(&e, SqlError::Quota(m) if m.contains("views")),
        "{e}"
    );
    run(format!("SELECT * FROM v{}", MAX_VIEWS_AND_TRIGGERS - 1)).unwrap();
}

#[test]
fn modules_and_pragmas_outside_the_allowlists_are_refused() {
    let (_dir, store) = roomy_store();
    for text in [
        "CREATE VIRTUAL TABLE temp.f USING fts3(content, tokenize=evil)",
        "CREATE VIRTUAL TABLE f USING fts4(content)",
        "CREATE VIRTUAL TABLE r USING rtree(id, a, b)",
        "SELECT * FROM dbstat",
        "SELECT * FROM sqlite_dbpage",
        "SELECT * FROM fts3tokenize",
        "SELECT * FROM pragma_database_list",
        "SELECT * FROM pragma_compile_options",
        "PRAGMA writable_schema = ON",
        "PRAGMA temp_store = MEMORY",
        "PRAGMA journal_mode = DELETE",
        "ATTACH 'x.db' AS x",
        "ATTACH 'file:x.db?mode=rwc' AS x",
        "VACUUM INTO '/tmp/valbox-vacuum-into.db'",
    ] {
        assert!(matches!(refused(&store, text), SqlError::Sql(_)), "{text}");
    }
}

#[test]
fn huge_values_and_endless_queries_end_in_clear_errors() {
    let (_dir, store) = roomy_store();
    // A width past the length limit makes NULL, not a huge string.
    let r = rows(&store, "SELECT printf('%.*c', 2000000000, 'x')");
    assert_eq!(r, vec![vec![Value::Null]]);
    for text in [
        "SELECT zeroblob(2000000000)",
        "SELECT randomblob(2000000000)",
    ] {
        assert!(
            matches!(refused(&store, text), SqlError::TooLarge(_)),
            "{text}"
        );
    }
    let endless = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) \
                   SELECT count(*) FROM r";
    let e = store
        .execute("o", ALL, &sql(endless), bounds(Duration::from_millis(300)))
        .unwrap_err();
    assert!(matches!(e, SqlError::Deadline(_)), "{e}");
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    let (_dir, store) = roomy_store();
    let deep = |open: &str, inner: &str, close: &str, n: usize| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    // Parentheses alone add no depth: SQLite's parser takes them.
    let r = rows(&store, &format!("SELECT {}", deep("(", "1", ")", 100_000)));
    assert_eq!(r, vec![vec![Value::Integer(1)]]);
    for text in [
        format!("SELECT {}", deep("(SELECT ", "1", ")", 5_000)),
        format!("SELECT 1{}", " OR 1".repeat(50_000)),
        format!("SELECT {}", deep("abs(", "1", ")", 5_000)),
    ] {
        refused(&store, &text);
    }
    // Deep JSON is refused by the JSON parser's own depth limit.
    let json = format!("SELECT json('{}')", deep("[", "1", "]", 100_000));
    assert!(refused(&store, &json).to_string().contains("JSON"));
}

#[test]
fn the_allowed_features_work() {
    let (_dir, store) = roomy_store();
    rows(&store, "CREATE TABLE t (a INTEGER, b TEXT)");
    rows(
        &store,
        "INSERT INTO t VALUES (1, '{\"k\": 2}'), (2, '[1,2]')",
    );
    let r = rows(
        &store,
        "SELECT a, b ->> '$.k', row_number() OVER (ORDER BY a DESC), \
         typeof(unixepoch(CURRENT_TIMESTAMP)) FROM t ORDER BY a",
    );
    assert_eq!(r[0][1], Value::Integer(2));
    assert_eq!(r[0][2], Value::Integer(2));
    assert_eq!(r[0][3], Value::Text("integer".into()));
    let r = rows(&store, "SELECT count(*) FROM t, json_each(t.b)");
    assert_eq!(r, vec![vec![Value::Integer(3)]]);
    let r = rows(
        &store,
        "SELECT name FROM pragma_table_info('t') ORDER BY cid",
    );
    assert_eq!(r.len(), 2);
    rows(&store, "ALTER TABLE t RENAME TO u");
    rows(&store, "ALTER TABLE u DROP COLUMN b");
    rows(&store, "CREATE VIRTUAL TABLE docs USING fts5(body)");
    rows(
        &store,
        "INSERT INTO docs VALUES ('hello world'), ('goodbye')",
    );
    let r = rows(
        &store,
        "SELECT highlight(docs, 0, '[', ']') FROM docs WHERE docs MATCH 'hello' \
         ORDER BY bm25(docs)",
    );
    assert_eq!(r, vec![vec![Value::Text("[hello] world".into())]]);
    rows(&store, "DROP TABLE docs");
}

#[test]
fn the_wal_stops_growing_while_a_reader_pins_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::new(dir.path().to_path_buf(), 1 << 20, 1 << 30);
    rows(&store, "CREATE TABLE t (b)");
    // A reader that never ends keeps the WAL from restarting.
    let reader = Connection::open(dir.path().join("o.sqlite3")).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM t;")
        .unwrap();
    let churn = [
        sql("INSERT INTO t VALUES (zeroblob(200000))"),
        sql("DELETE FROM t"),
    ];
    let write = || {
        store.batch(
            "o",
            ALL,
            &churn,
            Mode::Write,
            bounds(Duration::from_secs(10)),
        )
    };
    let e = (0..1000)
        .find_map(|_| write().err())
        .expect("the WAL grew without bound");
    assert!(matches!(e, SqlError::Quota(_)), "{e}");
    let wal = std::fs::metadata(dir.path().join("o.sqlite3-wal"))
        .unwrap()
        .len();
    assert!(wal <= store.wal_limit(), "{wal}");
    drop(reader);
    // Once the reader is gone, writes go on.
    write().unwrap();
}

#[test]
fn temporary_storage_is_bounded_per_owner() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::new(dir.path().to_path_buf(), 1 << 30, 2 << 20);
    let temp_table = [
        sql("CREATE TEMP TABLE big (b)"),
        sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
             INSERT INTO temp.big SELECT zeroblob(100000) FROM n",
        ),
    ];
    let e = store
        .batch(
            "o",
            ALL,
            &temp_table,
            Mode::Write,
            bounds(Duration::from_secs(10)),
        )
        .unwrap_err();
    assert!(
        matches!(&e, SqlError::Quota(m) if m.contains("temporary")),
        "{e}"
    );
    // A sort that spills is bounded too.
    let sort = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                WHERE i < 20000) SELECT count(*) FROM (SELECT randomblob(1000) AS x \
                FROM n ORDER BY x)";
    let e = refused(&store, sort);
    assert!(
        matches!(&e, SqlError::Quota(m) if m.contains("temporary")),
        "{e}"
    );
    // Nothing stays charged once the operations end; small ones run.
    assert_eq!(store.temp_budget("o").used(), 0);
    let r = rows(
        &store,
        "SELECT count(*) FROM (SELECT DISTINCT 1 UNION SELECT 2)",
    );
    assert_eq!(r, vec![vec![Value::Integer(2)]]);
}

#[test]
fn connections_are_reused_but_temp_objects_and_deadlines_are_not() {
    let (_dir, store) = roomy_store();
    rows(&store, "SELECT 1");
    rows(&store, "SELECT 1");
    assert_eq!(
        store.idle.count(),
        1,
        "the second operation reused the first's"
    );
    // TEMP objects, however they are named, last one operation.
    for (create, read) in [
        (
            "CREATE TEMP TABLE scratch (x)",
            "SELECT * FROM temp.scratch",
        ),
        ("CREATE TABLE temp.scratch2 (x)", "SELECT * FROM scratch2"),
        ("CREATE TEMP VIEW v AS SELECT 1", "SELECT * FROM v"),
    ] {
        rows(&store, create);
        let e = refused(&store, read);
        assert!(
            matches!(&e, SqlError::Sql(m) if m.contains("no such table")),
            "{create}: {e}"
        );
    }
    // A reused connection stops at its new operation's deadline, and the
    // next one is not held to the last one's.
    let endless = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) \
                   SELECT count(*) FROM r";
    let started = Instant::now();
    let e = store
        .execute("o", ALL, &sql(endless), bounds(Duration::from_millis(300)))
        .unwrap_err();
    assert!(matches!(e, SqlError::Deadline(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(rows(&store, "SELECT 2"), vec![vec![Value::Integer(2)]]);
    assert_eq!(store.idle.count(), 1);
}

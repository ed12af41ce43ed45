//! The PostgreSQL metadata store against a real server: the same
//! conformance checks as the embedded store, and what only many nodes
//! can show (migrations by several at once, writes racing across pools).

mod support;

use support::postgres::Cluster;

#[tokio::test(flavor = "multi_thread")]
async fn the_postgres_store_conforms() {
    let cluster = Cluster::start();
    let url = cluster.database("conformance").await;
    let store = valbox_store::postgres::open(&url).await.unwrap();
    valbox_store::conformance::all(&store).await;
}

/// Three nodes starting at once migrate the schema once, and each sees it.
#[tokio::test(flavor = "multi_thread")]
async fn nodes_starting_together_migrate_once() {
    let cluster = Cluster::start();
    let url = cluster.database("together").await;
    let opened = futures_join(&url).await;
    assert!(opened.iter().all(Result::is_ok), "{opened:?}");
}

async fn futures_join(url: &str) -> Vec<Result<(), String>> {
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let url = url.to_string();
            tokio::spawn(async move {
                let store = valbox_store::postgres::open(&url)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                store.health.ping().await.map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

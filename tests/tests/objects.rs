//! Components and blobs on S3 (moto's server on loopback): the store
//! passes the same checks as the file store, any node runs a val deployed
//! through another, and a store that is down costs 503s for what needs
//! it, never a hang or a wrong answer.

mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::TestServer;
use support::s3::S3Server;

#[tokio::test(flavor = "multi_thread")]
async fn s3_passes_the_object_store_checks() {
    let url = S3Server::shared().bucket().await;
    let objects = valbox_objects::open(&url).unwrap();
    valbox_objects::conformance::all(objects.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_val_deployed_on_one_node_runs_on_another_from_the_shared_store() {
    let a = TestServer::start_on_postgres().await;
    let b = a.another_node().await;
    a.deploy("hello", "hello", "public").await;
    // B has never seen the component: it fetches and compiles it.
    let first = b.get("/x/alice/hello/", None).await;
    assert_eq!(first.status(), StatusCode::OK);
    // A blob written through A is read, at its version, through B.
    let put = a
        .req(Method::POST, "/v1/blob/shared", Some(&a.alice))
        .body("from a")
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{put:?}");
    let got = b.get("/v1/blob/shared", Some(&b.alice)).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.text().await.unwrap(), "from a");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_store_that_is_down_costs_503s_for_what_needs_it() {
    let s3 = S3Server::start();
    let bucket = s3.bucket().await;
    let a = TestServer::start_on_postgres_with(|c| c.objects = Some(bucket)).await;
    a.deploy("hello", "hello", "public").await;
    a.deploy("counter", "counter", "public").await;
    assert_eq!(
        a.get("/x/alice/hello/", None).await.status(),
        StatusCode::OK
    );
    let b = a.another_node().await;
    s3.stop();

    let asked = Instant::now();
    let blob = a.get("/v1/blob/anything", Some(&a.alice)).await;
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(blob.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(blob.headers()["retry-after"], "1");
    let body: Value = blob.json().await.unwrap();
    assert_eq!(body["error"], "blob_storage_unavailable", "{body}");
    let write = a
        .req(Method::POST, "/v1/blob/k", Some(&a.alice))
        .body("v")
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::SERVICE_UNAVAILABLE);

    // A loaded val keeps answering; a node loading it for the first time
    // cannot, and says so; the rest of the API works.
    assert_eq!(
        a.get("/x/alice/hello/", None).await.status(),
        StatusCode::OK
    );
    let first_load = b.get("/x/alice/hello/", None).await;
    assert_eq!(first_load.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = first_load.json().await.unwrap();
    assert_eq!(body["error"], "component_unavailable", "{body}");
    assert_eq!(
        b.get("/v1/me", Some(&b.alice)).await.status(),
        StatusCode::OK
    );
}

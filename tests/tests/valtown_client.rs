//! Val Town's official TypeScript client (`@valtown/sdk`, from npm) against
//! a live Valbox server: the REST shapes must be what it expects.

mod support;

use support::TestServer;

#[tokio::test]
async fn the_official_client_works_against_valbox() {
    let s = TestServer::start().await;
    let v = s.deploy("hello", "hello", "public").await;
    s.deploy("counter", "counter", "public").await;
    assert_eq!(s.get("/x/alice/hello/", None).await.status(), 200);
    support::official_client_checks(&s, v["valId"].as_str().unwrap(), &[]).await;
}

//! The web UI in a real browser: Debian's chromium, driven over WebDriver
//! (chromedriver) with fantoccini, against the real server. Each page the
//! tests visit is saved as a screenshot in `target/screenshots/`.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::TestServer;
use support::browser::{Browser, login_link};
use support::smtp::free_port;

#[tokio::test]
async fn signing_in_with_a_link_which_works_once_and_signing_out() {
    let s = TestServer::start().await;
    let b = Browser::start().await;
    b.goto(&format!("{}/", s.base)).await;
    assert_eq!(b.path().await, "/login");
    b.screenshot("sign-in").await;

    let link = login_link(&s, "alice").await;
    b.goto(&link).await;
    // Opening the link signs nobody in: a mail scanner may fetch it.
    assert!(b.page().await.contains("Sign in to Valbox"));
    b.click("#use-link").await;
    b.wait_for_path("/vals").await;
    b.screenshot("vals-empty").await;

    // Used: refused, and it says so.
    b.goto(&link).await;
    b.click("#use-link").await;
    b.wait_for_text("already used, has expired").await;
    b.screenshot("link-refused").await;

    // Expired: refused too.
    let (secret, hash) = valbox_auth::generate_token("vbl_");
    let expired = valbox_model::now_ms() - 1;
    let sessions = s.store().await.sessions;
    sessions
        .add_link(&s.alice_id(), &hash, expired)
        .await
        .unwrap();
    b.goto(&format!("{}/login?link={secret}", s.base)).await;
    b.click("#use-link").await;
    b.wait_for_text("already used, has expired").await;

    // Signed in still (the refusals changed nothing), then out.
    b.goto(&format!("{}/account", s.base)).await;
    b.wait_for_text("alice@example.com").await;
    // What alice stores, against her quota.
    b.wait_for_text("of 1.0 GiB").await;
    b.screenshot("account").await;
    b.click("#sign-out").await;
    b.wait_for_path("/login").await;
    b.goto(&format!("{}/tokens", s.base)).await;
    assert_eq!(b.path().await, "/login");
}

#[tokio::test]
async fn a_token_made_on_the_tokens_page_works_as_scoped_until_revoked() {
    let s = TestServer::start().await;
    let b = Browser::start().await;
    b.sign_in(&s, "alice").await;
    b.goto(&format!("{}/tokens", s.base)).await;
    b.fill("#token-name", "from the browser").await;
    b.click("#scope-blob-read").await;
    b.click("#scope-user-read").await;
    b.click("#create-token button[type=submit]").await;
    let secret = b.text("#token-secret").await;
    assert!(secret.starts_with("vbx_"), "{secret}");
    b.screenshot("tokens").await;

    // A plain HTTP client: allowed what it holds, refused the rest.
    let resp = s
        .req(Method::POST, "/v1/blob/diary", Some(&s.alice))
        .body("dear diary")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(s.get("/v1/blob/diary", Some(&secret)).await.status(), 200);
    assert_eq!(s.get("/v1/me", Some(&secret)).await.status(), 200);
    let resp = s
        .req(Method::POST, "/v1/blob/diary", Some(&secret))
        .body("overwritten")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Revoke, confirming the dialog: refused at once.
    let tokens: Value = s
        .get("/v1/tokens", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    let id = tokens["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "from the browser")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Edit its scopes: add blob:write, and the write goes through.
    b.goto(&format!("{}/tokens", s.base)).await;
    b.click(&format!("tr[data-token='{id}'] summary")).await;
    b.click(&format!("#edit-{id}-blob-write")).await;
    b.click(&format!(
        "tr[data-token='{id}'] details button[type=submit]"
    ))
    .await;
    b.wait_for_text("Create a token").await;
    let mut allowed = false;
    for _ in 0..50 {
        let resp = s
            .req(Method::POST, "/v1/blob/diary", Some(&secret))
            .body("overwritten")
            .send()
            .await
            .unwrap();
        if resp.status().is_success() {
            allowed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(allowed, "the edited token still cannot write blobs");

    b.goto(&format!("{}/tokens", s.base)).await;
    b.click(&format!("tr[data-token='{id}'] button.danger"))
        .await;
    b.client.accept_alert().await.unwrap();
    let mut status = StatusCode::OK;
    for _ in 0..50 {
        status = s.get("/v1/blob/diary", Some(&secret)).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the revoked token still works"
    );
}

#[tokio::test]
async fn the_permissions_panel_switches_a_vals_scopes_and_grants_its_requests() {
    let s = TestServer::start().await;
    s.deploy("counter", "counter", "public").await;
    let b = Browser::start().await;
    b.sign_in(&s, "alice").await;
    let call = || async { s.get("/x/alice/counter/", None).await.status() };
    assert_eq!(call().await, 200);

    // Off: the import is denied on the next call.
    b.flip_scope(&s, "counter", "blob:write").await;
    assert_eq!(call().await, 403);
    // On again: allowed.
    b.flip_scope(&s, "counter", "blob:write").await;
    assert_eq!(call().await, 200);

    // Off, refused, and the refusal waits on the page as a request.
    b.flip_scope(&s, "counter", "blob:write").await;
    assert_eq!(call().await, 403);
    b.goto(&format!("{}/vals/counter", s.base)).await;
    b.find("tr[data-request]").await;
    b.screenshot("val").await;
    b.click("tr[data-request] button[type=submit]").await;
    for _ in 0..100 {
        if b.client.current_url().await.unwrap().fragment() == Some("permissions") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(call().await, 200);
    b.goto(&format!("{}/vals", s.base)).await;
    b.screenshot("vals").await;

    // Upload a new version from the val's page.
    b.goto(&format!("{}/vals/counter", s.base)).await;
    let hello = support::val_path("hello");
    b.fill("#component", hello.to_str().unwrap()).await;
    b.click("#upload-form button[type=submit]").await;
    let mut answer = String::new();
    for _ in 0..100 {
        answer = s.get("/x/alice/counter/", None).await.text().await.unwrap();
        if answer.contains("Hello") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answer.contains("Hello, world!"), "{answer}");
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused() {
    let s = TestServer::start().await;
    let b = Browser::start().await;
    b.sign_in(&s, "alice").await;
    // Another site's pages that post a form to ours as soon as they load:
    // one plants a token, one signs the browser in as someone else.
    let bob = s.create_user("bob").await;
    assert!(!bob.is_empty());
    let bobs_link = login_link(&s, "bob").await;
    let bobs_secret = bobs_link.split("link=").nth(1).unwrap().to_string();
    let autopost = |action: String, fields: String| {
        format!(
            r#"<form id="f" method="post" action="{action}">{fields}</form>
               <script>document.getElementById('f').submit()</script>"#
        )
    };
    let plant = autopost(
        format!("{}/tokens", s.base),
        r#"<input name="name" value="planted"><input name="scope" value="val:write">
           <input name="expires" value="0">"#
            .into(),
    );
    let swap = autopost(
        format!("{}/login", s.base),
        format!(r#"<input name="link" value="{bobs_secret}">"#),
    );
    let page = |html: String| {
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        })
    };
    let app = axum::Router::new()
        .route("/plant", page(plant))
        .route("/swap", page(swap));
    let port = free_port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    for host in ["localhost", "127.0.0.1"] {
        b.goto(&format!("http://{host}:{port}/plant")).await;
        b.goto(&format!("http://{host}:{port}/swap")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let tokens: Value = s
            .get("/v1/tokens", Some(&s.alice))
            .await
            .json()
            .await
            .unwrap();
        assert!(
            !tokens.to_string().contains("planted"),
            "a cross-site form from {host} made a token"
        );
        b.goto(&format!("{}/account", s.base)).await;
        b.wait_for_text("alice@example.com").await;
    }
    // The link itself was never used: bob can still sign in with it.
    b.goto(&bobs_link).await;
    b.click("#use-link").await;
    b.wait_for_path("/vals").await;
}

#[tokio::test]
async fn a_val_under_x_never_sees_the_session_and_runs_sandboxed() {
    let s = TestServer::start().await;
    s.deploy("inspect", "inspect", "public").await;
    let resp = s
        .req(Method::GET, "/x/alice/inspect/", None)
        .header("cookie", "theme=dark; valbox_session=vbs_secret; other=1")
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.starts_with("sandbox") && !csp.contains("allow-same-origin"),
        "{csp}"
    );
    let seen: Value = resp.json().await.unwrap();
    let cookie = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "cookie")
        .unwrap()[1]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cookie, "theme=dark; other=1");
}

#[tokio::test]
async fn a_browser_opening_a_val_under_x_lands_on_the_vals_own_host() {
    let s = TestServer::start().await;
    s.deploy("inspect", "inspect", "public").await;
    let b = Browser::start().await;
    b.sign_in(&s, "alice").await;
    b.goto(&format!("{}/x/alice/inspect/landed?q=1", s.base))
        .await;
    let url = b.client.current_url().await.unwrap();
    assert_eq!(url.host_str(), Some("alice-inspect.localhost"), "{url}");
    assert_eq!((url.path(), url.query()), ("/landed", Some("q=1")));
    // The val answered there, and the UI's session did not come along.
    let page = b.page().await;
    assert!(page.contains("\"path\":\"/landed\""), "{page}");
    assert!(!page.contains("valbox_session"), "{page}");
}

#[tokio::test]
async fn a_cron_vals_page_sets_its_schedule_and_unpauses_it() {
    let s = TestServer::start_configured(|c| c.min_schedule = Duration::from_secs(1)).await;
    let tick = s.deploy("tick", "tick", "private").await;
    let id = tick["valId"].as_str().unwrap().to_owned();
    let b = Browser::start().await;
    b.sign_in(&s, "alice").await;
    b.goto(&format!("{}/vals/tick", s.base)).await;
    b.wait_for_text("No schedule").await;

    // A bad schedule is refused with what to write instead.
    b.fill("#schedule-input", "every 0m").await;
    b.click("#schedule-form button[type=submit]").await;
    b.wait_for_text("like `every 15m`").await;

    // Without its blob scopes, every run fails: five pause it.
    assert_eq!(
        s.patch_val(&id, &json!({ "scopes": [] })).await.status(),
        200
    );
    b.goto(&format!("{}/vals/tick", s.base)).await;
    b.fill("#schedule-input", "every 1s").await;
    b.click("#schedule-form button[type=submit]").await;
    b.wait_for_text("every 1s").await;
    let mut paused = false;
    for _ in 0..60 {
        b.goto(&format!("{}/vals/tick", s.base)).await;
        if b.page().await.contains("Paused after 5 failures") {
            paused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(paused, "never paused");
    assert!(
        !b.page().await.contains("Next run"),
        "a paused val has no next run"
    );
    b.screenshot("cron-val").await;
    let scopes = json!({ "scopes": ["blob:read", "blob:write"] });
    assert_eq!(s.patch_val(&id, &scopes).await.status(), 200);
    b.click("#unpause").await;
    b.wait_for_path("/vals/tick").await;
    let ticked = || async { s.get("/v1/blob/ticks", Some(&s.alice)).await.status() };
    for _ in 0..40 {
        if ticked().await == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ticked().await, 200, "it never ran after being unpaused");
}

#[tokio::test]
async fn an_email_vals_page_shows_its_address_or_why_it_has_none() {
    let mail = valbox_server::mail_in::MailConfig::new("127.0.0.1:0".parse().unwrap(), "mail.test");
    let s = TestServer::start_configured(|c| c.mail = Some(mail)).await;
    s.deploy("inbox", "inbox", "public").await;
    s.deploy("secret-inbox", "inbox", "private").await;
    let b = Browser::start().await;
    b.sign_in(&s, "alice").await;
    b.goto(&format!("{}/vals/inbox", s.base)).await;
    b.wait_for_text("alice.inbox@mail.test").await;
    b.screenshot("email-val").await;
    b.goto(&format!("{}/vals/secret-inbox", s.base)).await;
    b.wait_for_text("A private val has no address").await;
}

#[tokio::test]
async fn an_http_vals_page_turns_instance_reuse_on_and_off() {
    let s = TestServer::start().await;
    s.deploy("inspect", "inspect", "public").await;
    let b = Browser::start().await;
    b.sign_in(&s, "alice").await;
    b.goto(&format!("{}/vals/inspect", s.base)).await;
    b.wait_for_text("Off: every call gets a fresh instance.")
        .await;
    let calls = || async {
        let memo: Value = s
            .get("/x/alice/inspect/memo", None)
            .await
            .json()
            .await
            .unwrap();
        memo["calls"].as_u64().unwrap()
    };
    assert_eq!((calls().await, calls().await), (1, 1));

    b.fill("#reuse", "50").await;
    b.click("#reuse-form button[type=submit]").await;
    b.wait_for_text("one instance serves up to 50 calls").await;
    b.screenshot("reuse").await;
    assert_eq!((calls().await, calls().await), (1, 2));

    b.fill("#reuse", "0").await;
    b.click("#reuse-form button[type=submit]").await;
    b.wait_for_text("Off: every call gets a fresh instance.")
        .await;
    assert_eq!((calls().await, calls().await), (1, 1));
}

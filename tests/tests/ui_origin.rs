//! The web UI and users' vals stay apart: a browser is sent to a val's own
//! host, a val's answer cannot set or clear the UI's cookies, UI pages
//! cannot be framed or cached, forms from another scheme are refused, and
//! signing in cannot be used up by strangers or by a val's mail.

mod support;

use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::TestServer;

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Vec<&'a str> {
    resp.headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_browser_is_sent_to_the_vals_own_host_and_api_clients_are_served() {
    let s = TestServer::start().await;
    s.deploy("inspect", "inspect", "public").await;
    let port = s.addr.port();
    let url = format!("{}/x/alice/inspect/deep/path?q=1&r=%2F", s.base);
    let resp = no_redirects()
        .get(&url)
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        header(&resp, "location"),
        [format!("http://alice-inspect.localhost:{port}/deep/path?q=1&r=%2F").as_str()]
    );
    // The val's own host serves it there.
    let resp = no_redirects()
        .get(format!("{}/deep/path?q=1", s.base))
        .header("host", format!("alice-inspect.localhost:{port}"))
        .send()
        .await
        .unwrap();
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["path"], "/deep/path");
    // Fetches and API clients are served under /x/ as before.
    for mode in [None, Some("cors"), Some("no-cors")] {
        let mut req = no_redirects().get(&url);
        if let Some(mode) = mode {
            req = req.header("sec-fetch-mode", mode);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{mode:?}");
        assert!(resp.headers().get(LOCATION).is_none());
    }
}

#[tokio::test]
async fn a_val_under_x_cannot_set_cookies_or_clear_the_uis_data() {
    let s = TestServer::start().await;
    s.deploy("inspect", "inspect", "public").await;
    let attack = "/x/alice/inspect/headers?set-cookie=bomb%3Dxxxx%3B%20Path%3D%2F\
        &set-cookie=valbox_session%3D%3B%20Max-Age%3D0\
        &Set-Cookie=__Host-valbox_session%3Dx\
        &clear-site-data=%22cookies%22&Clear-Site-Data=%22*%22&x-own=kept";
    let resp = s.get(attack, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header(&resp, "set-cookie").is_empty());
    assert!(header(&resp, "clear-site-data").is_empty());
    assert_eq!(header(&resp, "x-own"), ["kept"]);
    let csp = header(&resp, "content-security-policy");
    assert!(csp[0].starts_with("sandbox"), "{csp:?}");
}

#[tokio::test]
async fn on_its_own_host_a_val_keeps_its_cookies_but_cannot_reach_the_uis() {
    let s = TestServer::start().await;
    s.deploy("inspect", "inspect", "public").await;
    let port = s.addr.port();
    // The UI is at 127.0.0.1 (the public URL): a cookie for its domain, in
    // any spelling, or a Clear-Site-Data, would reach it.
    let query = "set-cookie=own%3D1%3B%20Path%3D%2F\
        &set-cookie=wide%3D1%3B%20Domain%3D127.0.0.1\
        &set-cookie=wider%3D1%3B%20path%3D%2F%3B%20DOMAIN%3D.127.0.0.1\
        &clear-site-data=%22cookies%22";
    let resp = no_redirects()
        .get(format!("{}/headers?{query}", s.base))
        .header("host", format!("alice-inspect.localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookies: Vec<&str> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies, ["own=1; Path=/"]);
    assert!(header(&resp, "clear-site-data").is_empty());
}

#[tokio::test]
async fn ui_pages_are_never_framed_cached_or_referred() {
    let s = TestServer::start().await;
    for path in ["/login", "/login?link=vbl_secret", "/vals", "/tokens"] {
        let resp = no_redirects()
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&resp, "x-frame-options"), ["DENY"], "{path}");
        let csp = header(&resp, "content-security-policy");
        assert!(csp[0].contains("frame-ancestors 'none'"), "{path}: {csp:?}");
        assert_eq!(header(&resp, "cache-control"), ["no-store"], "{path}");
        assert_eq!(header(&resp, "referrer-policy"), ["same-origin"], "{path}");
    }
}

#[tokio::test]
async fn a_form_from_another_scheme_or_host_is_refused() {
    let s = TestServer::start().await;
    let post = |origin: &str| {
        no_redirects()
            .post(format!("{}/login/link", s.base))
            .header("origin", origin)
            .form(&[("username", "nobody")])
            .send()
    };
    let host = s.addr.to_string();
    for origin in [
        format!("https://{host}"),
        format!("http://{host}.evil.test"),
        "null".to_string(),
        format!("http://evil.test/{host}"),
    ] {
        let resp = post(&origin).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin}");
    }
    let resp = post(&format!("http://{host}")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn over_https_the_session_cookie_is_host_prefixed() {
    let s = TestServer::start_configured(|c| c.public_url = "https://valbox.test".into()).await;
    let link = valbox_server::services::sign_in::login_link(
        &s.store().await,
        "alice",
        "https://valbox.test",
    )
    .await
    .unwrap()
    .unwrap();
    let secret = link.split_once("link=").unwrap().1;
    let resp = no_redirects()
        .post(format!("{}/login", s.base))
        .header("origin", format!("https://{}", s.addr))
        .form(&[("link", secret)])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let cookie = header(&resp, "set-cookie")
        .first()
        .map(|c| c.to_string())
        .unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "{}",
        resp.text().await.unwrap()
    );
    assert!(cookie.starts_with("__Host-valbox_session=vbs_"), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.to_ascii_lowercase().contains("domain"), "{cookie}");
    // The prefixed cookie signs in; the plain name does not.
    let session = cookie.split(';').next().unwrap();
    let page = |cookie: String| {
        no_redirects()
            .get(format!("{}/account", s.base))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(page(session.into()).await.unwrap().status(), StatusCode::OK);
    let plain = session.trim_start_matches("__Host-").to_string();
    assert_eq!(page(plain).await.unwrap().status(), StatusCode::SEE_OTHER);
}

/// The sign-in mails in alice's outbox.
async fn sign_in_mails(s: &TestServer) -> usize {
    let outbox: Value = s
        .get("/v1/email", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    outbox["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["subject"] == "Your Valbox sign-in link")
        .count()
}

async fn ask_link(s: &TestServer, username: &str) -> (StatusCode, String) {
    let resp = no_redirects()
        .post(format!("{}/login/link", s.base))
        .form(&[("username", username)])
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn a_vals_mail_never_uses_up_the_sign_in_mail() {
    let s = TestServer::start_with(|l| l.emails_per_day = 3).await;
    s.deploy("notify", "notify", "public").await;
    // Strangers make alice's val mail her until her vals' budget is gone.
    for expected in [200, 200, 200, 400] {
        let resp = s
            .req(Method::POST, "/x/alice/notify/", None)
            .body("hello")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected);
        if expected != 200 {
            let text = resp.text().await.unwrap();
            assert!(text.contains("daily limit of 3 emails"), "{text}");
        }
    }
    let (status, page) = ask_link(&s, "alice").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Check your mail"), "{page}");
    assert_eq!(sign_in_mails(&s).await, 1);
}

#[tokio::test]
async fn strangers_asking_for_links_cannot_lock_a_user_out() {
    let s = TestServer::start().await;
    // Someone asks for alice's links over and over: three go to her mail.
    for _ in 0..3 {
        assert_eq!(ask_link(&s, "alice").await.0, StatusCode::OK);
    }
    let (status, page) = ask_link(&s, "alice").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("use the newest one"), "{page}");
    assert_eq!(sign_in_mails(&s).await, 3);
    // Made-up names mail nothing, and the requester runs out of asks
    // (10 in all), without touching anyone else's.
    for i in 0..7 {
        assert_eq!(ask_link(&s, &format!("nobody{i}")).await.0, StatusCode::OK);
    }
    let (status, page) = ask_link(&s, "bob").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("you asked for many"), "{page}");
    // Alice still signs in: with a link she was sent, and from the CLI.
    let message: String = s
        .db()
        .call_blocking(|c| {
            Ok(c.query_row(
                "SELECT message FROM emails WHERE platform = 1 ORDER BY created_at LIMIT 1",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    let secret = message.split("link=").nth(1).unwrap();
    let secret: String = secret
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let resp = no_redirects()
        .post(format!("{}/login", s.base))
        .form(&[("link", secret.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        valbox_server::services::sign_in::login_link(&s.store().await, "alice", &s.base)
            .await
            .unwrap()
            .is_some()
    );
}

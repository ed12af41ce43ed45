//! A real browser for the web UI's tests: Debian's chromium, headless,
//! driven over WebDriver (chromedriver) with fantoccini.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::smtp::free_port;
use super::{TestServer, repo_root};

/// chromedriver with a headless chromium session; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads its own process group, and chromium's many
        // processes are in it: end them all, not only the driver (killing
        // the driver alone left chromium running after the tests).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    pub async fn start() -> Self {
        let port = free_port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium chromium-driver; .ci/run does)");
        let url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1100"],
            }),
        );
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let mut builder = ClientBuilder::new(connector);
            if let Ok(client) = builder.capabilities(caps.clone()).connect(&url).await {
                return Self { client, driver };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = driver.kill();
        let _ = driver.wait();
        panic!("chromedriver did not start");
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The element `css`, waiting for it to appear (a click that sends a
    /// form returns before the answer is shown).
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Wait until the page shows `text`.
    pub async fn wait_for_text(&self, text: &str) {
        for _ in 0..100 {
            if self.page().await.contains(text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page never showed `{text}`");
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        // A file input cannot be cleared; it takes the path as keys.
        if element.attr("type").await.unwrap().as_deref() != Some("file") {
            element.clear().await.unwrap();
        }
        element.send_keys(text).await.unwrap();
    }

    /// Flip the val's scope `scope` on its page and save.
    pub async fn flip_scope(&self, s: &TestServer, val: &str, scope: &str) {
        self.goto(&format!("{}/vals/{val}", s.base)).await;
        self.click(&format!("#perm-{}", scope.replace(':', "-")))
            .await;
        self.save_permissions().await;
    }

    /// Save the permissions panel and wait for the page it leads to.
    pub async fn save_permissions(&self) {
        self.click("#permissions-form button[type=submit]").await;
        for _ in 0..100 {
            let url = self.client.current_url().await.unwrap();
            if url.fragment() == Some("permissions") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("saving the permissions led nowhere");
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Wait until the browser is at `path` (a form's answer may still be
    /// on its way when a click returns).
    pub async fn wait_for_path(&self, path: &str) {
        for _ in 0..100 {
            if self.path().await == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(self.path().await, path);
    }

    pub async fn page(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Save the page as `target/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = repo_root().join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Sign in as `user` with a fresh link, as a user would.
    pub async fn sign_in(&self, s: &TestServer, user: &str) {
        let link = login_link(s, user).await;
        self.goto(&link).await;
        self.click("#use-link").await;
        self.wait_for_path("/vals").await;
    }
}

pub async fn login_link(s: &TestServer, user: &str) -> String {
    valbox_server::services::sign_in::login_link(&s.store().await, user, &s.base)
        .await
        .unwrap()
        .expect("the user exists")
}

//! Talking to a Valbox server over HTTP as alice: one node, a load
//! balancer in front of many, whatever answers at `base`.

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use super::val_bytes;

pub struct Api {
    /// `http://HOST:PORT`, no trailing slash.
    pub base: String,
    pub http: Client,
    /// alice's all-scopes token.
    pub alice: String,
}

impl Api {
    pub fn new(base: String, alice: String) -> Self {
        Self {
            base,
            http: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            alice,
        }
    }

    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Create a token as `as_token` with exactly `scopes`; returns (id, token).
    pub async fn token_with(&self, as_token: &str, scopes: &[&str]) -> (String, String) {
        let resp = self
            .req(Method::POST, "/v1/tokens", Some(as_token))
            .json(&json!({ "name": "test", "scopes": scopes }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "creating a token");
        let body: Value = resp.json().await.unwrap();
        (
            body["id"].as_str().unwrap().into(),
            body["token"].as_str().unwrap().into(),
        )
    }

    /// Change alice's val `id` (privacy, scopes, fetch allowlist...).
    pub async fn patch_val(&self, id: &str, body: &Value) -> Response {
        self.req(Method::PATCH, &format!("/v2/vals/{id}"), Some(&self.alice))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.req(Method::GET, path, token).send().await.unwrap()
    }

    /// Create val `name` (if needed) as `token`'s user and deploy `wasm`.
    pub async fn deploy_bytes(
        &self,
        token: &str,
        name: &str,
        privacy: &str,
        wasm: Vec<u8>,
    ) -> Response {
        let val = self.ensure_val(token, name, privacy).await;
        self.upload_version(token, val["id"].as_str().unwrap(), wasm)
            .await
    }

    /// Upload `wasm` as a new version of the val `val_id`, as `token`.
    pub async fn upload_version(&self, token: &str, val_id: &str, wasm: Vec<u8>) -> Response {
        self.req(
            Method::POST,
            &format!("/v2/vals/{val_id}/versions"),
            Some(token),
        )
        .body(wasm)
        .send()
        .await
        .unwrap()
    }

    pub async fn ensure_val(&self, token: &str, name: &str, privacy: &str) -> Value {
        let resp = self
            .req(Method::POST, "/v2/vals", Some(token))
            .json(&json!({ "name": name, "privacy": privacy }))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::CONFLICT {
            let me: Value = self.get("/v1/me", Some(token)).await.json().await.unwrap();
            let user = me["username"].as_str().unwrap();
            return self
                .get(&format!("/v2/alias/vals/{user}/{name}"), Some(token))
                .await
                .json()
                .await
                .unwrap();
        }
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json().await.unwrap()
    }

    /// Deploy an example as alice; returns the new version's JSON.
    pub async fn deploy(&self, name: &str, example: &str, privacy: &str) -> Value {
        let resp = self
            .deploy_bytes(&self.alice.clone(), name, privacy, val_bytes(example))
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json().await.unwrap()
    }

    /// Poll the log endpoint until `pred` holds for the entries, or panic.
    pub async fn wait_for_logs(
        &self,
        token: &str,
        query: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        for _ in 0..100 {
            let body: Value = self
                .get(&format!("/v1/telemetry/logs?{query}"), Some(token))
                .await
                .json()
                .await
                .unwrap();
            let data = body["data"].as_array().cloned().unwrap_or_default();
            if pred(&data) {
                return data;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the expected log records never appeared");
    }
}

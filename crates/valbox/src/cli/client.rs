//! The commands that talk to a running server's REST API at `VALBOX_URL`
//! with `VALBOX_TOKEN`: the client itself, deploy, logs, scopes, email.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::ClientArgs;

/// A small client for the REST API that turns error bodies into messages.
pub(super) struct Client {
    base: String,
    token: String,
    pub(super) http: reqwest::Client,
}

impl Client {
    pub(super) fn new(args: ClientArgs) -> Self {
        Self {
            base: args.url.trim_end_matches('/').to_string(),
            token: args.token,
            http: reqwest::Client::new(),
        }
    }

    pub(super) async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Option<Value>> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the Valbox server at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(String::from))
                .unwrap_or(text);
            bail!("the server answered {status}: {message}");
        }
        Ok(Some(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        }))
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn me(&self) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url("/v1/me")))
            .await?
            .context("the server does not know this token's user")
    }

    /// The caller's val by name; `None` only when there is no such val.
    async fn find_val(&self, name: &str) -> anyhow::Result<Option<Value>> {
        let me = self.me().await?;
        let user = me["username"].as_str().unwrap_or_default();
        self.send(
            self.http
                .get(self.url(&format!("/v2/alias/vals/{user}/{name}"))),
        )
        .await
    }

    /// The caller's val by name.
    pub(super) async fn val(&self, name: &str) -> anyhow::Result<Value> {
        self.find_val(name)
            .await?
            .with_context(|| format!("you have no val named `{name}`"))
    }
}

/// What the component declares it needs, against what the val holds.
fn print_declared(declared: &Value) {
    let list = |v: &Value| {
        let names: Vec<&str> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        names.join(" ")
    };
    if declared.is_null() {
        return;
    }
    println!("  declares scopes: {}", list(&declared["scopes"]));
    if declared["fetchHosts"]
        .as_array()
        .is_some_and(|h| !h.is_empty())
    {
        println!("  declares fetch hosts: {}", list(&declared["fetchHosts"]));
    }
    if declared["grantedNow"].as_bool() == Some(true) {
        println!("  granted what it declares");
    } else if declared["notGranted"]
        .as_array()
        .is_some_and(|m| !m.is_empty())
    {
        println!(
            "  not granted: {} (deploy with --grant-declared to grant them)",
            list(&declared["notGranted"])
        );
    }
}

pub(super) fn id_of(val: &Value) -> String {
    val["id"].as_str().unwrap_or_default().to_string()
}

pub(super) struct DeployOptions {
    pub(super) privacy: Option<String>,
    pub(super) description: Option<String>,
    pub(super) scopes: Option<String>,
    /// Libraries the component imports: `user/val[@N|@latest]`.
    pub(super) deps: Vec<String>,
    /// Scopes granted to libraries: `user/val=scope,scope`.
    pub(super) grants: Vec<String>,
    /// Grant what the component declares it needs.
    pub(super) grant_declared: bool,
    /// A cron val's schedule, set once it is deployed.
    pub(super) schedule: Option<String>,
    /// Calls one instance may serve (0: a fresh one for each call).
    pub(super) reuse: Option<u32>,
}

pub(super) async fn deploy(
    client: &Client,
    name: &str,
    wasm: &std::path::Path,
    options: DeployOptions,
) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(wasm)
        .await
        .with_context(|| format!("reading {}", wasm.display()))?;
    let val = val_to_deploy(client, name, &options).await?;
    let yes = "true".to_string();
    let query: Vec<(&str, &String)> = options
        .deps
        .iter()
        .map(|d| ("dep", d))
        .chain(options.grants.iter().map(|g| ("grant", g)))
        .chain(options.grant_declared.then_some(("grantDeclared", &yes)))
        .collect();
    let req = client
        .http
        .post(client.url(&format!("/v2/vals/{}/versions", id_of(&val))))
        .query(&query)
        .header("content-type", "application/wasm")
        .body(bytes);
    let version = client
        .send(req)
        .await?
        .context("the val vanished during deploy")?;
    println!("deployed {name} version {}", version["version"]);
    print_declared(&version["declared"]);
    print_libraries(&version["resolvedLibraries"]);
    println!("{}", version["url"].as_str().unwrap_or_default());
    if let Some(host_url) = version["hostUrl"].as_str() {
        println!("{host_url}");
    }
    if let Some(schedule) = &options.schedule {
        set_schedule(client, &val, json!({ "schedule": schedule })).await?;
    }
    Ok(())
}

/// `valbox val schedule NAME [EXPR|off] [--unpause]`: set, or show, a cron
/// val's schedule.
pub(super) async fn val_schedule(
    client: &Client,
    name: &str,
    schedule: Option<String>,
    unpause: bool,
) -> anyhow::Result<()> {
    let val = client.val(name).await?;
    let body = match (schedule, unpause) {
        (Some(schedule), true) => json!({ "schedule": schedule, "paused": false }),
        (Some(schedule), false) => json!({ "schedule": schedule }),
        (None, true) => json!({ "paused": false }),
        (None, false) => {
            let url = client.url(&format!("/v2/vals/{}", id_of(&val)));
            let val = client.send(client.http.get(url)).await?.unwrap_or_default();
            print_schedule(&val);
            return Ok(());
        }
    };
    set_schedule(client, &val, body).await
}

async fn set_schedule(client: &Client, val: &Value, body: Value) -> anyhow::Result<()> {
    let url = client.url(&format!("/v2/vals/{}", id_of(val)));
    let val = client.send(client.http.patch(url).json(&body)).await?;
    print_schedule(&val.context("the val vanished")?);
    Ok(())
}

/// A cron val's schedule, next run and state, on one line.
fn print_schedule(val: &Value) {
    let s = &val["schedule"];
    match s["expression"].as_str() {
        None => println!("no schedule"),
        Some(expression) => println!(
            "schedule {expression}: next run {}, last run {}{}",
            s["nextRunAt"].as_str().unwrap_or("none while paused"),
            s["lastRunAt"].as_str().unwrap_or("never"),
            match (s["paused"].as_bool(), s["failures"].as_i64()) {
                (Some(true), _) => " (paused after failing: unpause with --unpause)".to_string(),
                (_, Some(n)) if n > 0 => format!(" ({n} failed in a row)"),
                _ => String::new(),
            }
        ),
    }
}

/// The val `name`, with the settings `options` give: created if it does
/// not exist. Any other failure (a missing scope, an unreachable server)
/// stops here and says so.
async fn val_to_deploy(
    client: &Client,
    name: &str,
    options: &DeployOptions,
) -> anyhow::Result<Value> {
    let DeployOptions {
        privacy,
        description,
        scopes,
        reuse,
        ..
    } = options;
    let patch = |val: &Value, body: Value| {
        let url = client.url(&format!("/v2/vals/{}", id_of(val)));
        client.send(client.http.patch(url).json(&body))
    };
    if let Some(val) = client.find_val(name).await? {
        if privacy.is_some() || description.is_some() || scopes.is_some() || reuse.is_some() {
            let body = json!({
                "privacy": privacy, "description": description, "scopes": scopes, "reuse": reuse,
            });
            patch(&val, body).await?;
        }
        return Ok(val);
    }
    let body = json!({
        "name": name,
        "privacy": privacy.as_deref().unwrap_or("public"),
        "description": description,
    });
    let val = client
        .send(client.http.post(client.url("/v2/vals")).json(&body))
        .await?
        .context("creating the val failed")?;
    if scopes.is_some() || reuse.is_some() {
        patch(&val, json!({ "scopes": scopes, "reuse": reuse })).await?;
    }
    Ok(val)
}

/// What each library a deploy resolved is pinned to and granted.
fn print_libraries(resolved: &Value) {
    for library in resolved.as_array().into_iter().flatten() {
        let pin = if library["pinned"].as_bool() == Some(true) {
            "pinned to"
        } else {
            "following its latest version, now"
        };
        let grants = library["grants"].as_array().map_or(0, Vec::len);
        println!(
            "  library {} {pin} version {}{}",
            library["name"].as_str().unwrap_or_default(),
            library["version"],
            if grants == 0 {
                ", granted no scopes".to_string()
            } else {
                format!(", granted {}", library["grants"])
            }
        );
    }
}

pub(super) async fn logs(client: &Client, name: &str, limit: u32) -> anyhow::Result<()> {
    let val = client.val(name).await?;
    let id = id_of(&val);
    if val["kind"].as_str() == Some("cron") {
        let url = client.url(&format!("/v2/vals/{id}"));
        print_schedule(&client.send(client.http.get(url)).await?.unwrap_or_default());
    }
    let req = client
        .http
        .get(client.url(&format!("/v1/telemetry/logs?val_id={id}&limit={limit}")));
    let logs = client.send(req).await?.unwrap_or_default();
    for entry in logs["data"].as_array().into_iter().flatten() {
        let a = &entry["attributes"];
        let ns: i64 = entry["timeUnixNano"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        println!(
            "{} v{} {} {} {:.2}ms fuel={} {}",
            valbox_model::iso8601(ns / 1_000_000),
            a["val.version"],
            a["trigger"].as_str().unwrap_or_default(),
            a["http.status"],
            a["duration_ms"].as_f64().unwrap_or(0.0),
            a["fuel_used"],
            entry["body"].as_str().unwrap_or_default(),
        );
        for (stream, text) in [("stdout", &a["stdout"]), ("stderr", &a["stderr"])] {
            for line in text.as_str().unwrap_or_default().lines() {
                println!("    {stream}: {line}");
            }
        }
    }
    Ok(())
}

pub(super) async fn val_scopes(
    client: &Client,
    name: &str,
    scopes: Vec<String>,
) -> anyhow::Result<()> {
    let mut val = client.val(name).await?;
    if !scopes.is_empty() {
        let req = client
            .http
            .patch(client.url(&format!("/v2/vals/{}", id_of(&val))))
            .json(&json!({ "scopes": scopes.join(" ") }));
        val = client.send(req).await?.context("the val vanished")?;
    }
    let list: Vec<&str> = val["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!("{}", list.join(" "));
    Ok(())
}

pub(super) async fn email_list(client: &Client) -> anyhow::Result<()> {
    let outbox = client
        .send(client.http.get(client.url("/v1/email")))
        .await?
        .unwrap_or_default();
    for e in outbox["data"].as_array().into_iter().flatten() {
        println!(
            "{}\t{}\t{}\t{}{}",
            e["createdAt"].as_str().unwrap_or_default(),
            e["status"].as_str().unwrap_or_default(),
            e["id"].as_str().unwrap_or_default(),
            e["subject"].as_str().unwrap_or_default(),
            e["lastError"]
                .as_str()
                .map(|err| format!("\t({err})"))
                .unwrap_or_default(),
        );
    }
    Ok(())
}

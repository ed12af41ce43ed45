//! The CLI's least-privilege commands: a token's or val's scope usage,
//! narrowing it to what it used, and vals' scope requests.

use anyhow::Context;
use serde_json::Value;

use super::client::{Client, id_of};

/// Print a usage report (`GET .../usage`).
fn print_usage(report: &Value) {
    println!(
        "{:<14} {:<5} {:>6}  {:<24} {:>6}  last denied",
        "scope", "held", "used", "last used", "denied"
    );
    for s in report["data"].as_array().into_iter().flatten() {
        println!(
            "{:<14} {:<5} {:>6}  {:<24} {:>6}  {}",
            s["scope"].as_str().unwrap_or_default(),
            if s["held"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            s["used"],
            s["lastUsedAt"].as_str().unwrap_or("-"),
            s["denied"],
            s["lastDeniedAt"].as_str().unwrap_or("-"),
        );
    }
    let days = &report["days"];
    println!(
        "held but unused in the last {days} days: {}",
        names(&report["unused"])
    );
    println!("narrowed to what it used: {}", names(&report["suggested"]));
}

fn names(list: &Value) -> String {
    let names: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(" ")
    }
}

fn print_narrowed(what: &str, narrowed: &Value) {
    println!(
        "narrowed {what} to the scopes it used in the last {} days",
        narrowed["days"]
    );
    println!("  before:  {}", names(&narrowed["before"]));
    println!("  after:   {}", names(&narrowed["after"]));
    println!("  removed: {}", names(&narrowed["removed"]));
}

/// `valbox token usage ID` and `valbox token narrow ID --to-used`.
pub(super) async fn token_usage(
    client: &Client,
    id: &str,
    days: u32,
    narrow: bool,
) -> anyhow::Result<()> {
    if narrow {
        let url = client.url(&format!("/v1/tokens/{id}/narrow?days={days}"));
        let narrowed = client.send(client.http.post(url)).await?;
        let narrowed = narrowed.with_context(|| format!("you have no live token `{id}`"))?;
        print_narrowed(&format!("token {id}"), &narrowed);
        return Ok(());
    }
    let url = client.url(&format!("/v1/tokens/{id}/usage?days={days}"));
    let report = client.send(client.http.get(url)).await?;
    print_usage(&report.with_context(|| format!("you have no live token `{id}`"))?);
    Ok(())
}

/// `valbox val scopes NAME --usage` and `--to-used`.
pub(super) async fn val_usage(
    client: &Client,
    name: &str,
    days: u32,
    narrow: bool,
) -> anyhow::Result<()> {
    let id = id_of(&client.val(name).await?);
    if narrow {
        let url = client.url(&format!("/v2/vals/{id}/narrow?days={days}"));
        let narrowed = client
            .send(client.http.post(url))
            .await?
            .context("the val vanished")?;
        print_narrowed(&format!("val {name}"), &narrowed);
        return Ok(());
    }
    let url = client.url(&format!("/v2/vals/{id}/usage?days={days}"));
    let report = client
        .send(client.http.get(url))
        .await?
        .context("the val vanished")?;
    print_usage(&report);
    Ok(())
}

/// `valbox val requests [--grant ID | --dismiss ID]`.
pub(super) async fn requests(
    client: &Client,
    grant: Option<String>,
    dismiss: Option<String>,
) -> anyhow::Result<()> {
    let decision = match (grant, dismiss) {
        (Some(id), None) => Some((id, "grant")),
        (None, Some(id)) => Some((id, "dismiss")),
        (None, None) => None,
        (Some(_), Some(_)) => anyhow::bail!("give --grant or --dismiss, not both"),
    };
    if let Some((id, decision)) = decision {
        let url = client.url(&format!("/v1/scope-requests/{id}/{decision}"));
        let decided = client
            .send(client.http.post(url))
            .await?
            .with_context(|| format!("you have no scope request `{id}`"))?;
        println!(
            "{} `{}` for {}",
            decided["status"].as_str().unwrap_or_default(),
            decided["scope"].as_str().unwrap_or_default(),
            decided["val"].as_str().unwrap_or_default()
        );
        return Ok(());
    }
    let list = client
        .send(client.http.get(client.url("/v1/scope-requests")))
        .await?
        .unwrap_or_default();
    for r in list["data"].as_array().into_iter().flatten() {
        println!(
            "{}\t{}\t{}\t{}\trefused {} times, last {}",
            r["id"].as_str().unwrap_or_default(),
            r["status"].as_str().unwrap_or_default(),
            r["val"].as_str().unwrap_or_default(),
            r["scope"].as_str().unwrap_or_default(),
            r["denied"],
            r["lastDeniedAt"].as_str().unwrap_or_default(),
        );
    }
    Ok(())
}

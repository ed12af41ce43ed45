//! How the API shows a val and its versions.

use serde_json::{Value, json};

use crate::api::iso8601;
use crate::app::App;
use crate::auth::Principal;
use crate::auth::val_access::owner_reads;
use crate::db::{ValRow, VersionRow};

pub fn val_urls(app: &App, val: &ValRow) -> (String, String) {
    let base = &app.config.public_url;
    let path_url = format!("{base}/x/{}/{}/", val.owner_name, val.name);
    let port = app.config.listen.port();
    let host_url = format!(
        "http://{}-{}.{}:{port}/",
        val.owner_name, val.name, app.config.val_host_suffix
    );
    (path_url, host_url)
}

pub fn version_json(v: &VersionRow) -> Value {
    json!({
        "version": v.version,
        "sha256": v.sha256,
        "size": v.size,
        "kind": v.kind,
        "createdAt": iso8601(v.created_at),
    })
}

/// A val as the API shows it. Its call scopes and fetch allowlist are
/// settings, shown only to its owner.
pub fn val_json(app: &App, val: &ValRow, viewer: Option<&Principal>) -> Value {
    let base = &app.config.public_url;
    let (endpoint, host_endpoint) = val_urls(app, val);
    let mut links = json!({
        "self": format!("{base}/v2/vals/{}", val.id),
        "html": endpoint,
        "module": format!("{base}/v2/vals/{}/versions", val.id),
    });
    match val.latest.as_ref().map(|v| v.kind.as_str()) {
        Some("http") => {
            links["endpoint"] = json!(endpoint);
            links["hostEndpoint"] = json!(host_endpoint);
        }
        Some("script") => {
            links["run"] = json!(format!("{base}/v1/run/{}.{}", val.owner_name, val.name));
        }
        _ => {}
    }
    let mut json = json!({
        "id": val.id,
        "name": val.name,
        "privacy": val.privacy,
        "description": val.description,
        "author": { "id": val.owner_id, "username": val.owner_name, "type": "user" },
        "createdAt": iso8601(val.created_at),
        "imageUrl": null,
        "kind": val.latest.as_ref().map(|v| v.kind.clone()),
        "version": val.latest.as_ref().map(|v| v.version),
        "links": links,
    });
    if owner_reads(val, viewer) {
        json["scopes"] = json!(
            val.scopes
                .split(' ')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        );
        json["fetchAllowlist"] = json!(val.fetch_allowlist);
    }
    json
}

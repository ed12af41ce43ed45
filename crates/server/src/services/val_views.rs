//! How the API shows a val and its versions.

use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;
use crate::services::val_access::owner_reads;
use valbox_model::iso8601;
use valbox_model::{Principal, ValKind};
use valbox_store::{ValRow, VersionRow};

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

/// A version of a val as the API shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Version)]
pub struct VersionView {
    version: i64,
    sha256: String,
    size: i64,
    kind: String,
    created_at: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    libraries: Vec<LibraryRefView>,
}

/// A library a version imports, as stored: `version` is `null` for an
/// own library that follows its latest version.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LibraryRef)]
struct LibraryRefView {
    val_id: String,
    version: Option<i64>,
    grants: Vec<String>,
}

impl From<&VersionRow> for VersionView {
    fn from(v: &VersionRow) -> Self {
        Self {
            version: v.version,
            sha256: v.sha256.clone(),
            size: v.size,
            kind: v.kind.as_str().into(),
            created_at: iso8601(v.created_at),
            libraries: v
                .libraries
                .iter()
                .map(|l| LibraryRefView {
                    val_id: l.library_id.clone(),
                    version: l.version,
                    grants: l.grants.names(),
                })
                .collect(),
        }
    }
}

/// A val as the API shows it, in Val Town's shape.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Val)]
pub struct ValResponse {
    id: String,
    name: String,
    privacy: String,
    description: String,
    author: ValAuthor,
    created_at: String,
    /// Val Town's field; a Valbox val has no image, so always `null`.
    image_url: Option<String>,
    /// The latest version's; `null` before the first deploy.
    kind: Option<String>,
    version: Option<i64>,
    links: ValLinks,
    /// Absent, not `null`, for anyone but the owner.
    #[serde(flatten)]
    #[schema(value_type = ValSettings)]
    settings: Option<ValSettings>,
    /// A cron val's schedule, for its owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleView>,
    /// Where an email val receives mail, when this server receives mail
    /// and the val is not private.
    #[serde(skip_serializing_if = "Option::is_none")]
    email_address: Option<String>,
}

/// A cron val's schedule and runs, as its owner sees them.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Schedule)]
pub struct ScheduleView {
    expression: String,
    /// `null` while paused: it does not run until unpaused.
    next_run_at: Option<String>,
    last_run_at: Option<String>,
    /// Runs that failed in a row.
    failures: i32,
    paused: bool,
}

/// The `author` of a [`ValResponse`].
#[derive(Serialize, ToSchema)]
struct ValAuthor {
    id: String,
    username: String,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "user")]
    kind: &'static str,
}

/// The `links` of a [`ValResponse`]; which of the last three there are
/// depends on the kind of the latest version.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ValLinks {
    #[serde(rename = "self")]
    self_link: String,
    html: String,
    module: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<String>,
}

/// A val's settings: its call scopes and fetch allowlist.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ValSettings {
    /// The scopes of its calls' token; only its owner sees them.
    #[schema(required = false)]
    scopes: Vec<String>,
    /// Hosts it may fetch from; `null` means any public host. Only its
    /// owner sees them.
    #[schema(required = false)]
    fetch_allowlist: Option<Vec<String>>,
    /// Calls one instance may serve; 0: a fresh instance for every call.
    reuse: u32,
}

impl ValResponse {
    /// `val` as `viewer` sees it: its settings only if it is the owner's.
    pub fn new(app: &App, val: &ValRow, viewer: Option<&Principal>) -> Self {
        let base = &app.config.public_url;
        let (endpoint, host_endpoint) = val_urls(app, val);
        let mut links = ValLinks {
            self_link: format!("{base}/v2/vals/{}", val.id),
            html: endpoint.clone(),
            module: format!("{base}/v2/vals/{}/versions", val.id),
            endpoint: None,
            host_endpoint: None,
            run: None,
        };
        match val.latest.as_ref().map(|v| v.kind.as_str()) {
            Some("http") => {
                links.endpoint = Some(endpoint);
                links.host_endpoint = Some(host_endpoint);
            }
            Some("script") => {
                links.run = Some(format!("{base}/v1/run/{}.{}", val.owner_name, val.name));
            }
            _ => {}
        }
        let settings = owner_reads(val, viewer).then(|| ValSettings {
            scopes: val.scopes.names(),
            fetch_allowlist: val.fetch_allowlist.clone(),
            reuse: val.reuse,
        });
        Self {
            id: val.id.clone(),
            name: val.name.clone(),
            privacy: val.privacy.as_str().into(),
            description: val.description.clone(),
            author: ValAuthor {
                id: val.owner_id.clone(),
                username: val.owner_name.clone(),
                kind: "user",
            },
            created_at: iso8601(val.created_at),
            image_url: None,
            kind: val.latest.as_ref().map(|v| v.kind.as_str().into()),
            version: val.latest.as_ref().map(|v| v.version),
            links,
            settings,
            schedule: None,
            email_address: crate::mail_in::address_of(app, val),
        }
    }

    /// With the val's schedule, if it has one and `viewer` owns it.
    pub async fn with_schedule(
        mut self,
        app: &App,
        val: &ValRow,
        viewer: Option<&Principal>,
    ) -> crate::error::ApiResult<Self> {
        let is_cron = val.latest.as_ref().is_some_and(|v| v.kind == ValKind::Cron);
        if is_cron && owner_reads(val, viewer) {
            let row = app.store.schedules.get(&val.id).await?;
            self.schedule = row.map(|r| ScheduleView {
                expression: r.schedule,
                next_run_at: r.paused_at.is_none().then(|| iso8601(r.next_run_ms)),
                last_run_at: r.last_run_ms.map(iso8601),
                failures: r.failures,
                paused: r.paused_at.is_some(),
            });
        }
        Ok(self)
    }
}

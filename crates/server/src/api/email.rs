//! `POST /v1/email` (Val Town's shape) and `GET /v1/email` (the outbox).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use valbox_caps::Capabilities;
use valbox_caps::email::Sending;
use valbox_caps::email::outbox::{EmailError, Outgoing};

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::web::{Authed, JsonBody};
use valbox_model::iso8601;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(send, list))
}

/// `"a@b"` or `{email, name?}`.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = Address)]
enum AddressJson {
    Plain(String),
    Named { email: String, name: Option<String> },
}

impl AddressJson {
    fn email(&self) -> &str {
        match self {
            AddressJson::Plain(e) | AddressJson::Named { email: e, .. } => e,
        }
    }
}

/// One address or a list of them.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
enum Addresses {
    One(AddressJson),
    Many(Vec<AddressJson>),
}

impl Addresses {
    fn list(self) -> Vec<AddressJson> {
        match self {
            Addresses::One(a) => vec![a],
            Addresses::Many(v) => v,
        }
    }
}

/// A message to yourself (Val Town's shape): `to`, `cc` and `bcc`, if
/// given, must be your own address.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Email)]
struct SendBody {
    to: Option<Addresses>,
    cc: Option<Addresses>,
    bcc: Option<Addresses>,
    from: Option<AddressJson>,
    reply_to_list: Option<Addresses>,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
    /// Refused: Valbox sends no attachments.
    #[serde(default)]
    #[schema(value_type = Vec<Object>, max_items = 0)]
    attachments: Vec<Value>,
}

fn api_error(e: EmailError) -> ApiError {
    match e {
        EmailError::Denied(d) => d.into(),
        EmailError::Invalid(m) => ApiError::bad_request("invalid_email", m),
        EmailError::TooLarge(_) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
        }
        EmailError::DailyLimit(_) => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "daily_limit", e.to_string())
        }
        EmailError::Internal(m) => ApiError::internal(m),
    }
}

#[utoipa::path(
    post,
    path = "/v1/email",
    operation_id = "sendEmail",
    tag = "email",
    summary = "Queue mail to yourself",
    description = "Needs `email:write`.",
    request_body = SendBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Queued", body = Queued),
        (status = 429, description = "Your daily email limit is reached", body = crate::error::ErrorResponse),
    )
)]
async fn send(
    State(caps): State<Arc<Capabilities>>,
    Authed(mut who): Authed,
    JsonBody(body): JsonBody<SendBody>,
) -> ApiResult<Json<Queued>> {
    let emails = |a: Option<Addresses>| {
        a.map(Addresses::list)
            .unwrap_or_default()
            .iter()
            .map(|a| a.email().to_string())
            .collect::<Vec<_>>()
    };
    let mut recipients = emails(body.to);
    recipients.extend(emails(body.cc));
    recipients.extend(emails(body.bcc));
    let mail = Outgoing {
        from_name: body.from.and_then(|f| match f {
            AddressJson::Named { name, .. } => name,
            AddressJson::Plain(_) => None,
        }),
        reply_to: emails(body.reply_to_list),
        subject: body.subject.unwrap_or_default(),
        text: body.text,
        html: body.html,
        loop_trace: Vec::new(),
    };
    let sending = Sending {
        recipients,
        mail,
        attachments: body.attachments.len(),
    };
    let id = caps
        .email
        .send(&mut who, None, sending)
        .await
        .map_err(api_error)?;
    Ok(Json(Queued {
        message: format!("email queued for delivery to your address (id {id})"),
        id,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/email",
    operation_id = "listEmail",
    tag = "email",
    summary = "Your outbox, newest first, with each message's delivery status",
    description = "Needs `email:read`.",
    security(("bearer" = [])),
    responses((status = 200, description = "The outbox", body = Outbox))
)]
async fn list(
    State(caps): State<Arc<Capabilities>>,
    Authed(mut who): Authed,
) -> ApiResult<Json<Outbox>> {
    let entries = caps.email.outbox(&mut who).await.map_err(api_error)?;
    let data = entries
        .into_iter()
        .map(|e| OutboxEntry {
            id: e.id,
            subject: e.subject,
            status: e.status,
            attempts: e.attempts,
            last_error: e.last_error,
            created_at: iso8601(e.created_at),
            sent_at: e.sent_at.map(iso8601),
        })
        .collect();
    Ok(Json(Outbox { data }))
}

/// The answer to a send: the queued message's id.
#[derive(Serialize, ToSchema)]
struct Queued {
    message: String,
    id: String,
}

/// The caller's outbox, newest first.
#[derive(Serialize, ToSchema)]
struct Outbox {
    data: Vec<OutboxEntry>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct OutboxEntry {
    id: String,
    subject: String,
    status: String,
    attempts: i64,
    last_error: Option<String>,
    created_at: String,
    sent_at: Option<String>,
}

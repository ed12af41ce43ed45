//! GitHub secret scanning partner endpoint: GitHub posts tokens it found in
//! public code; every matching Valbox token is revoked at once and its
//! owner told. Requests must carry a valid ECDSA P-256 SHA-256 signature
//! from one of the configured keys; anything else revokes nothing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Authed, iso8601};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use valbox_auth as auth;
use valbox_auth::{API_TOKEN_PREFIX, CALL_TOKEN_PREFIX};
use valbox_caps::email::outbox::Outgoing;
use valbox_model::Scope;

const KEY_ID_HEADER: &str = "github-public-key-identifier";
const SIGNATURE_HEADER: &str = "github-public-key-signature";

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(verify))
        .routes(routes!(notifications))
}

/// A token GitHub found in public (GitHub's names).
#[derive(Deserialize, ToSchema)]
#[schema(as = SecretScanningMatch)]
struct Match {
    token: String,
    #[serde(rename = "type")]
    token_type: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    source: String,
}

/// GitHub's answer format for one reported token (GitHub's names, so
/// snake_case).
#[derive(Serialize, ToSchema)]
#[schema(as = SecretScanningVerdict)]
struct Verdict {
    token_raw: String,
    token_type: String,
    label: Label,
}

/// Whether a reported token is one this server issued.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Label {
    TruePositive,
    FalsePositive,
}

/// Check the signature over the raw body against the named configured key.
fn check_signature(app: &App, headers: &HeaderMap, body: &[u8]) -> ApiResult<()> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized(format!("missing `{name}` header")))
    };
    let key_id = header(KEY_ID_HEADER)?;
    let signature = header(SIGNATURE_HEADER)?;
    let pem = app
        .config
        .secret_scanning_keys
        .iter()
        .find(|(id, _)| id == key_id)
        .map(|(_, pem)| pem)
        .ok_or_else(|| ApiError::unauthorized(format!("unknown signing key `{key_id}`")))?;
    let key = VerifyingKey::from_public_key_pem(pem).map_err(ApiError::internal)?;
    let bad = || ApiError::unauthorized("the signature does not verify");
    let der = BASE64.decode(signature.trim()).map_err(|_| bad())?;
    let signature = Signature::from_der(&der).map_err(|_| bad())?;
    key.verify(body, &signature).map_err(|_| bad())
}

#[utoipa::path(
    post,
    path = "/v1/secret-scanning/verify",
    operation_id = "verifySecretScanningAlert",
    tag = "notifications",
    summary = "GitHub secret scanning: revoke tokens found in public",
    description = "For GitHub only: the body must be signed (ECDSA P-256, SHA-256) by a key the server is configured with. Every live token reported is revoked and its owner told.",
    params(
        ("Github-Public-Key-Identifier" = String, Header, description = "The signing key's id"),
        ("Github-Public-Key-Signature" = String, Header, description = "The signature over the body, base64 DER"),
    ),
    request_body = Vec<Match>,
    responses(
        (status = 200, description = "A verdict for each token", body = Vec<Verdict>),
        (status = 401, description = "Missing or bad signature, or an unknown key", body = ErrorResponse),
    )
)]
async fn verify(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Vec<Verdict>>> {
    check_signature(&app, &headers, &body)?;
    let matches: Vec<Match> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("expected a JSON array of {{token, type, url, source}}: {e}"),
        )
    })?;
    let mut answers = Vec::with_capacity(matches.len());
    for m in matches {
        let leak = revoke(&app, &m.token).await?;
        if let Leak::Revoked(owner) = &leak {
            let message = format!(
                "A Valbox token of yours was found in public at {} ({}) and has been revoked. Create a new one and keep it out of public code.",
                if m.url.is_empty() {
                    "an unknown place"
                } else {
                    &m.url
                },
                if m.source.is_empty() {
                    "unknown source"
                } else {
                    &m.source
                },
            );
            app.store
                .users
                .notify(owner, "token_leaked", &message)
                .await?;
            // And by email, through the owner's outbox.
            let mail = Outgoing {
                subject: "A Valbox token of yours was leaked and revoked".into(),
                text: Some(message),
                ..Outgoing::default()
            };
            if let Err(e) = app.caps.email.mailer.send_platform(owner, None, mail).await {
                tracing::warn!("could not email the owner of a leaked token: {e}");
            }
        }
        answers.push(Verdict {
            token_raw: m.token,
            token_type: m.token_type,
            label: if leak == Leak::Unknown {
                Label::FalsePositive
            } else {
                Label::TruePositive
            },
        });
    }
    Ok(Json(answers))
}

/// What a reported token turned out to be.
#[derive(Debug, PartialEq)]
enum Leak {
    /// Not a token this server issued (or a call token whose call ended).
    Unknown,
    /// A real token, revoked before (reported again, or by its owner).
    AlreadyRevoked,
    /// A live token, revoked now; its owner is told.
    Revoked(String),
}

/// Revoke `token` if it is a live Valbox token.
async fn revoke(app: &App, token: &str) -> ApiResult<Leak> {
    let hash = auth::hash_token(token);
    if auth::well_formed(token, CALL_TOKEN_PREFIX) {
        let owner = app.auth.call_tokens.get(&hash).map(|t| t.owner_id);
        app.auth.call_tokens.revoke(&hash);
        return Ok(owner.map_or(Leak::Unknown, Leak::Revoked));
    }
    if !auth::well_formed(token, API_TOKEN_PREFIX) {
        return Ok(Leak::Unknown);
    }
    let tokens = &app.store.tokens;
    if tokens.by_hash(&hash).await?.is_none() {
        return Ok(Leak::Unknown);
    }
    let owner = tokens.revoke_by_hash(&hash).await?;
    Ok(owner.map_or(Leak::AlreadyRevoked, Leak::Revoked))
}

/// A message to a user, such as that a token of theirs leaked.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Notification)]
struct NotificationView {
    kind: String,
    message: String,
    created_at: String,
}

/// The body of `GET /v1/notifications`.
#[derive(Serialize, ToSchema)]
#[schema(as = NotificationList)]
struct NotificationListResponse {
    data: Vec<NotificationView>,
}

#[utoipa::path(
    get,
    path = "/v1/notifications",
    operation_id = "listNotifications",
    tag = "notifications",
    summary = "Things the server had to tell you, such as a leaked token",
    description = "Needs `user:read`.",
    security(("bearer" = [])),
    responses((status = 200, description = "The notifications", body = NotificationListResponse))
)]
async fn notifications(
    State(app): State<App>,
    Authed(who): Authed,
) -> ApiResult<Json<NotificationListResponse>> {
    who.require(Scope::UserRead)?;
    let rows = app.store.users.notifications(&who.user_id).await?;
    let data = rows
        .into_iter()
        .map(|n| NotificationView {
            kind: n.kind,
            message: n.message,
            created_at: iso8601(n.created_at),
        })
        .collect();
    Ok(Json(NotificationListResponse { data }))
}

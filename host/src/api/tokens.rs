//! Personal API tokens: create (shown once), list, revoke. A token can only
//! create tokens with scopes it holds itself, and a val's per-call token
//! can never manage tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Authed, JsonBody, iso8601};
use crate::app::App;
use crate::auth::{self, Principal, Scope, Scopes};
use crate::db::{self, TokenRow};
use crate::error::{ApiError, ApiResult};

const MAX_NAME_LEN: usize = 100;
const MAX_DAYS: i64 = 3650;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/tokens", get(list).post(create))
        .route("/v1/tokens/{id}", delete(revoke))
}

/// Scopes as a JSON array of names or one space-separated string.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum ScopeList {
    List(Vec<String>),
    Text(String),
}

impl ScopeList {
    pub fn parse(&self) -> ApiResult<Scopes> {
        let text = match self {
            ScopeList::List(v) => v.join(" "),
            ScopeList::Text(t) => t.clone(),
        };
        Scopes::parse(&text).map_err(|m| ApiError::bad_request("invalid_scope", m))
    }
}

/// Refuse (403, with `message` naming the first missing scope) unless the
/// caller's own token holds every scope in `wanted`.
pub fn require_all(
    who: &Principal,
    wanted: &Scopes,
    message: impl FnOnce(Scope) -> String,
) -> ApiResult<()> {
    match wanted.first_missing_from(&who.scopes) {
        Some(scope) => Err(ApiError::forbidden(message(scope))),
        None => Ok(()),
    }
}

/// [`require_all`] for handing scopes out.
pub fn require_grantable(who: &Principal, wanted: &Scopes) -> ApiResult<()> {
    require_all(who, wanted, |scope| {
        format!("cannot grant `{scope}`: the token making this request does not hold it")
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    name: String,
    scopes: ScopeList,
    expires_at: Option<String>,
    expires_in_days: Option<i64>,
}

fn token_json(row: &TokenRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "kind": "api",
        "scopes": row.scopes.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "createdAt": iso8601(row.created_at),
        "lastUsedAt": row.last_used_at.map(iso8601),
        "expiresAt": row.expires_at.map(iso8601),
        "revokedAt": row.revoked_at.map(iso8601),
    })
}

fn expiry(body: &CreateBody) -> ApiResult<Option<i64>> {
    let now = db::now_ms();
    let at = match (&body.expires_at, body.expires_in_days) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_expiry",
                "give `expiresAt` or `expiresInDays`, not both",
            ));
        }
        (None, None) => return Ok(None),
        (None, Some(days)) if (1..=MAX_DAYS).contains(&days) => now + days * 86_400_000,
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_expiry",
                format!("`expiresInDays` must be between 1 and {MAX_DAYS}"),
            ));
        }
        (Some(text), None) => {
            let t =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_expiry",
                        "`expiresAt` must be an RFC 3339 time like 2027-01-01T00:00:00Z",
                    )
                })?;
            (t.unix_timestamp_nanos() / 1_000_000).clamp(0, i64::MAX as i128) as i64
        }
    };
    if at <= now {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            "the expiry is in the past",
        ));
    }
    Ok(Some(at))
}

async fn create(
    State(app): State<App>,
    Authed(who): Authed,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require_personal_token()?;
    who.require(Scope::UserWrite)?;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("a token needs a name of 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    let scopes = body.scopes.parse()?;
    require_grantable(&who, &scopes)?;
    let expires_at = expiry(&body)?;
    let (token, hash) = auth::generate_token(auth::API_TOKEN_PREFIX);
    let owner = who.user_id.clone();
    let row = app
        .db
        .call(move |conn| {
            db::insert_token(conn, &owner, &name, &hash, &scopes.to_string(), expires_at)
        })
        .await?;
    let mut out = token_json(&row);
    out["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(out)))
}

async fn list(State(app): State<App>, Authed(who): Authed) -> ApiResult<Json<Value>> {
    who.require_personal_token()?;
    who.require(Scope::UserRead)?;
    let owner = who.user_id.clone();
    let rows = app
        .db
        .call(move |conn| db::list_tokens(conn, &owner))
        .await?;
    let mut data: Vec<Value> = rows.iter().map(token_json).collect();
    // Live per-call tokens too, so an owner can see and revoke them.
    for call in app.call_tokens.for_owner(&who.user_id) {
        data.push(json!({
            "id": call.id,
            "name": format!("call of val {}", call.val_id),
            "kind": "call",
            "valId": call.val_id,
            "scopes": call.scopes.iter().collect::<Vec<_>>(),
            "createdAt": iso8601(call.created_at_ms),
            "expiresAt": iso8601(call.expires_at_ms),
        }));
    }
    Ok(Json(json!({ "data": data })))
}

async fn revoke(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require_personal_token()?;
    who.require(Scope::UserWrite)?;
    if app.call_tokens.revoke_id(&who.user_id, &id) {
        return Ok(StatusCode::NO_CONTENT);
    }
    let owner = who.user_id.clone();
    let key = id.clone();
    if app
        .db
        .call(move |conn| db::revoke_token(conn, &owner, &key))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "you have no live token `{id}`"
        )))
    }
}

//! Personal API tokens: create (shown once), list, revoke. A token can only
//! create tokens with scopes it holds itself, and a val's per-call token
//! can never manage tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Authed, JsonBody, iso8601};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::services::tokens::{issue, require_personal_token};
use valbox_auth::CallToken;
use valbox_model::{ALL_SCOPES, Scope, Scopes};
use valbox_store::TokenRow;

const MAX_DAYS: i64 = 3650;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// Scopes as a JSON array of names or one space-separated string.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum ScopeList {
    List(Vec<String>),
    Text(String),
}

/// Its schema names every scope the model knows, so the document cannot
/// lag behind a new one.
impl utoipa::PartialSchema for ScopeList {
    fn schema() -> RefOr<Schema> {
        let name = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ALL_SCOPES));
        let one = ALL_SCOPES.join("|");
        let text = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^[ ,]*(({one})([ ,]+({one}))*)?[ ,]*$")));
        OneOfBuilder::new()
            .item(ArrayBuilder::new().items(name))
            .item(text)
            .description(Some(
                "Scopes as an array of names or one string of names separated by spaces or commas",
            ))
            .into()
    }
}

impl ToSchema for ScopeList {
    fn name() -> std::borrow::Cow<'static, str> {
        "Scopes".into()
    }
}

impl ScopeList {
    pub fn parse(&self) -> ApiResult<Scopes> {
        let refused = |m| ApiError::bad_request("invalid_scope", m);
        match self {
            // Each item one name: `""` or `"a b"` is not a scope.
            ScopeList::List(names) => Scopes::parse_names(names.iter().map(String::as_str)),
            ScopeList::Text(text) => Scopes::parse(text),
        }
        .map_err(refused)
    }
}

/// A token to create. Give at most one of `expiresAt` and `expiresInDays`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = NewToken)]
struct CreateBody {
    /// 1 to 100 characters, not only spaces.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    scopes: ScopeList,
    /// An RFC 3339 time, at most 3650 days from now.
    expires_at: Option<String>,
    /// 1 to 3650.
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(default, deserialize_with = "crate::web::whole_number")]
    expires_in_days: Option<i64>,
}

/// A personal API token as the API shows it: never its secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiToken)]
struct ApiTokenView {
    id: String,
    name: String,
    /// `api`.
    #[schema(value_type = String, example = "api")]
    kind: &'static str,
    scopes: Vec<String>,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: Option<String>,
    revoked_at: Option<String>,
}

impl From<TokenRow> for ApiTokenView {
    fn from(row: TokenRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            kind: "api",
            scopes: row.scopes.names(),
            created_at: iso8601(row.created_at),
            last_used_at: row.last_used_at.map(iso8601),
            expires_at: row.expires_at.map(iso8601),
            revoked_at: row.revoked_at.map(iso8601),
        }
    }
}

/// A new token: [`ApiTokenView`] and, this once, the token itself.
#[derive(Serialize, ToSchema)]
#[schema(as = CreatedToken)]
struct NewTokenResponse {
    #[serde(flatten)]
    view: ApiTokenView,
    /// The secret: shown this once, never again.
    token: String,
}

/// A live per-call token, listed so that its owner can revoke it. It has
/// no `lastUsedAt` or `revokedAt`: it lives for one call.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CallToken)]
struct CallTokenView {
    id: String,
    name: String,
    /// `call`.
    #[schema(value_type = String, example = "call")]
    kind: &'static str,
    val_id: String,
    #[schema(value_type = Vec<String>)]
    scopes: Vec<Scope>,
    created_at: String,
    expires_at: String,
}

impl From<CallToken> for CallTokenView {
    fn from(call: CallToken) -> Self {
        Self {
            id: call.id,
            name: format!("call of val {}", call.val_id),
            kind: "call",
            scopes: call.scopes.iter().collect(),
            created_at: iso8601(call.created_at_ms),
            expires_at: iso8601(call.expires_at_ms),
            val_id: call.val_id,
        }
    }
}

/// One entry of the token list, in its kind's own shape.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = Token)]
enum TokenView {
    Api(ApiTokenView),
    Call(CallTokenView),
}

/// The body of `GET /v1/tokens`.
#[derive(Serialize, ToSchema)]
#[schema(as = TokenList)]
struct TokenListResponse {
    data: Vec<TokenView>,
}

fn expiry(body: &CreateBody) -> ApiResult<Option<i64>> {
    let now = valbox_model::now_ms();
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
    // One cap for both spellings: a token lives at most MAX_DAYS.
    if at > now + MAX_DAYS * 86_400_000 {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            format!("a token may live at most {MAX_DAYS} days; give an earlier `expiresAt`"),
        ));
    }
    if at <= now {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            "the expiry is in the past",
        ));
    }
    Ok(Some(at))
}

#[utoipa::path(
    post,
    path = "/v1/tokens",
    operation_id = "createToken",
    tag = "tokens",
    summary = "Create a token, with at most the caller's own scopes",
    description = "Needs `user:write` and a personal token (not a val's call token). The secret is in the answer this once.",
    request_body = CreateBody,
    security(("bearer" = [])),
    responses((status = 201, description = "The token, with its secret", body = NewTokenResponse))
)]
async fn create(
    State(app): State<App>,
    Authed(who): Authed,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<NewTokenResponse>)> {
    require_personal_token(&who)?;
    who.require(Scope::UserWrite)?;
    let scopes = body.scopes.parse()?;
    let expires_at = expiry(&body)?;
    let (row, token) = issue(&app, &who, &body.name, scopes, expires_at).await?;
    let view = ApiTokenView::from(row);
    Ok((StatusCode::CREATED, Json(NewTokenResponse { view, token })))
}

#[utoipa::path(
    get,
    path = "/v1/tokens",
    operation_id = "listTokens",
    tag = "tokens",
    summary = "Your tokens and live call tokens, never their secrets",
    description = "Needs `user:read` and a personal token.",
    security(("bearer" = [])),
    responses((status = 200, description = "The tokens", body = TokenListResponse))
)]
async fn list(State(app): State<App>, Authed(who): Authed) -> ApiResult<Json<TokenListResponse>> {
    require_personal_token(&who)?;
    who.require(Scope::UserRead)?;
    let rows = app.store.tokens.list(&who.user_id).await?;
    let api = rows.into_iter().map(|row| TokenView::Api(row.into()));
    // Live per-call tokens too, so an owner can see and revoke them.
    let calls = app.auth.call_tokens.for_owner(&who.user_id).into_iter();
    let calls = calls.map(|call| TokenView::Call(call.into()));
    Ok(Json(TokenListResponse {
        data: api.chain(calls).collect(),
    }))
}

#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    operation_id = "revokeToken",
    tag = "tokens",
    summary = "Revoke a token at once",
    description = "Needs `user:write` and a personal token. Works on a live call token too.",
    params(("id" = String, Path, description = "The token's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "You have no live token with that id", body = crate::error::ErrorResponse),
    )
)]
async fn revoke(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_personal_token(&who)?;
    who.require(Scope::UserWrite)?;
    if app.auth.call_tokens.revoke_id(&who.user_id, &id) {
        return Ok(StatusCode::NO_CONTENT);
    }
    if app.store.tokens.revoke(&who.user_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "you have no live token `{id}`"
        )))
    }
}

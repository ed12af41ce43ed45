//! Listing vals, a page at a time: `/v2/vals` (public ones and the
//! caller's own) and `/v2/me/vals`.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::val_json;
use crate::api::{Authed, Caller};
use crate::app::App;
use crate::auth::{Principal, Scope};
use crate::db;
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize)]
pub(super) struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
    /// `/v2/vals` pages by cursor (Val Town's client sends `links.next`
    /// back as `cursor`); ours is the next offset.
    cursor: Option<String>,
}

impl Page {
    fn bounds(&self) -> ApiResult<(i64, i64)> {
        let limit = self.limit.unwrap_or(20);
        let cursor = match &self.cursor {
            Some(c) => Some(c.parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    "`cursor` must be a value from `links.next`",
                )
            })?),
            None => None,
        };
        let offset = cursor.or(self.offset).unwrap_or(0);
        if !(1..=100).contains(&limit) || offset < 0 {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`limit` must be between 1 and 100 and `offset` at least 0",
            ));
        }
        Ok((limit, offset))
    }
}

/// How a listing points at its next page.
#[derive(Clone, Copy, PartialEq)]
enum NextLink {
    Url,
    Cursor,
}

async fn page_of_vals(
    app: &App,
    path: &str,
    next_link: NextLink,
    who: Option<&Principal>,
    only: Option<String>,
    page: Page,
) -> ApiResult<Json<Value>> {
    let (limit, offset) = page.bounds()?;
    // Listings show public vals, and the caller's own when it may read them.
    let viewer = who
        .filter(|p| p.scopes.has(Scope::ValRead))
        .map(|p| p.user_id.clone());
    let rows = app
        .db
        .call(move |conn| {
            db::list_vals(conn, viewer.as_deref(), only.as_deref(), limit + 1, offset)
        })
        .await?;
    let more = rows.len() as i64 > limit;
    let data: Vec<Value> = rows
        .iter()
        .take(limit as usize)
        .map(|v| val_json(app, v, who))
        .collect();
    let base = &app.config.public_url;
    let mut links = json!({ "self": format!("{base}{path}?limit={limit}&offset={offset}") });
    if more {
        links["next"] = match next_link {
            NextLink::Url => json!(format!(
                "{base}{path}?limit={limit}&offset={}",
                offset + limit
            )),
            NextLink::Cursor => json!((offset + limit).to_string()),
        };
    }
    if offset > 0 {
        links["prev"] = json!(format!(
            "{base}{path}?limit={limit}&offset={}",
            (offset - limit).max(0)
        ));
    }
    Ok(Json(json!({ "data": data, "links": links })))
}

pub(super) async fn list(
    State(app): State<App>,
    Caller(who): Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    page_of_vals(&app, "/v2/vals", NextLink::Cursor, who.as_ref(), None, page).await
}

pub(super) async fn list_mine(
    State(app): State<App>,
    Authed(who): Authed,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    who.require(Scope::ValRead)?;
    let me = Some(who.user_id.clone());
    page_of_vals(&app, "/v2/me/vals", NextLink::Url, Some(&who), me, page).await
}

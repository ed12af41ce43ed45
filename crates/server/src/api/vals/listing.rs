//! Listing vals, a page at a time: `/v2/vals` (public ones and the
//! caller's own) and `/v2/me/vals`.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::{Authed, Caller};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::services::val_views::ValResponse;
use valbox_model::{Principal, Scope};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Page {
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// At least 0 (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// `/v2/vals` pages by cursor (Val Town's client sends `links.next`
    /// back as `cursor`); ours is the next offset.
    #[param(pattern = "^[0-9]{1,18}$")]
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
        // Each parameter checked on its own, whichever of them wins.
        let negative = [cursor, self.offset].iter().flatten().any(|o| *o < 0);
        let offset = cursor.or(self.offset).unwrap_or(0);
        if !(1..=100).contains(&limit) || negative {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`limit` must be between 1 and 100 and `offset` at least 0",
            ));
        }
        Ok((limit, offset))
    }
}

/// A page of vals.
#[derive(Serialize, ToSchema)]
pub(super) struct ValPage {
    data: Vec<ValResponse>,
    links: PageLinks,
}

/// The `links` of a [`ValPage`]: `next` and `prev` only where there is
/// such a page.
#[derive(Serialize, ToSchema)]
struct PageLinks {
    #[serde(rename = "self")]
    self_link: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev: Option<String>,
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
) -> ApiResult<Json<ValPage>> {
    let (limit, offset) = page.bounds()?;
    // Listings show public vals, and the caller's own when it may read them.
    let viewer = who
        .filter(|p| p.scopes.has(Scope::ValRead))
        .map(|p| p.user_id.clone());
    let rows = app
        .store
        .vals
        .list(viewer.as_deref(), only.as_deref(), limit + 1, offset)
        .await?;
    let more = rows.len() as i64 > limit;
    let data = rows
        .iter()
        .take(limit as usize)
        .map(|v| ValResponse::new(app, v, who))
        .collect();
    let base = &app.config.public_url;
    let next = more.then(|| match next_link {
        NextLink::Url => format!("{base}{path}?limit={limit}&offset={}", offset + limit),
        NextLink::Cursor => (offset + limit).to_string(),
    });
    let prev = (offset > 0).then(|| {
        format!(
            "{base}{path}?limit={limit}&offset={}",
            (offset - limit).max(0)
        )
    });
    let links = PageLinks {
        self_link: format!("{base}{path}?limit={limit}&offset={offset}"),
        next,
        prev,
    };
    Ok(Json(ValPage { data, links }))
}

#[utoipa::path(
    get,
    path = "/v2/vals",
    operation_id = "listVals",
    tag = "vals",
    summary = "Public vals, and the caller's own with `val:read`",
    description = "`links.next` is a cursor (Val Town's client sends it back as `cursor`).",
    params(Page),
    security((), ("bearer" = [])),
    responses((status = 200, description = "A page of vals", body = ValPage))
)]
pub(super) async fn list(
    State(app): State<App>,
    Caller(who): Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<ValPage>> {
    page_of_vals(&app, "/v2/vals", NextLink::Cursor, who.as_ref(), None, page).await
}

#[utoipa::path(
    get,
    path = "/v2/me/vals",
    operation_id = "listMyVals",
    tag = "vals",
    summary = "The caller's vals",
    description = "Needs `val:read`. `links.next` is the next page's URL.",
    params(Page),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of vals", body = ValPage))
)]
pub(super) async fn list_mine(
    State(app): State<App>,
    Authed(who): Authed,
    Query(page): Query<Page>,
) -> ApiResult<Json<ValPage>> {
    who.require(Scope::ValRead)?;
    let me = Some(who.user_id.clone());
    page_of_vals(&app, "/v2/me/vals", NextLink::Url, Some(&who), me, page).await
}

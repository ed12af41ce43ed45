//! `GET /openapi.json`: the REST API's OpenAPI 3.1 document. Each
//! handler's `#[utoipa::path]` attribute describes it, and utoipa-axum
//! mounts the handler from that same attribute (`api::documented`), so a
//! route cannot be served without being described. What every route
//! shares (the error shape, which errors an operation can answer) is
//! added here, once, by rule.

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, Response};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::error::ErrorResponse;

/// The name of the bearer-token security scheme in the document.
pub const BEARER: &str = "bearer";

const DESCRIPTION: &str = "\
The REST API of a Valbox server: vals and their versions, API tokens, \
blob storage, SQLite, email, env vars, call logs, and the Run API.

**Authentication.** Send `Authorization: Bearer <token>`. Without it the \
caller is anonymous; a token that is not valid (unknown, revoked, \
expired) is refused with 401, never taken as anonymous. Each operation \
needs the scope it names; without it the answer is 403 naming the scope.

**Errors.** Every error is JSON: `{\"error\": \"<code>\", \"message\": \
\"<what to do>\"}` (`ErrorResponse`), the code stable, the message for \
people.

**Val Town.** Where Valbox offers a resource Val Town has, the path and \
the JSON shape are Val Town's, so its official client works against \
Valbox.

**Not described here.** The vals' own HTTP endpoints (`/x/{user}/{val}/...` \
and the hosts `{user}-{val}.<suffix>`) answer whatever each val answers: \
they are user content. The web UI's HTML pages and forms, the metrics \
listener (`GET /metrics`, on its own address) and the cluster's internal \
listener are not part of the REST API.";

#[derive(OpenApi)]
#[openapi(
    info(title = "Valbox REST API", description = DESCRIPTION),
    components(schemas(ErrorResponse, Binary)),
    modifiers(&BearerScheme),
    tags(
        (name = "health", description = "Liveness and readiness, for load balancers"),
        (name = "users", description = "Profiles, in Val Town's shape"),
        (name = "tokens", description = "Personal API tokens; never their secrets after creation"),
        (name = "least privilege", description = "What a token or val did with its scopes; narrowing; scope requests"),
        (name = "vals", description = "Vals and their versions, in Val Town's shape where it has one"),
        (name = "env", description = "A val's env vars; values are never returned"),
        (name = "run", description = "The Run API: call a script val with JSON arguments"),
        (name = "logs", description = "Call logs, in Val Town's telemetry shape"),
        (name = "blob", description = "The caller's blob storage, in Val Town's shape"),
        (name = "sqlite", description = "The caller's SQLite database, in Val Town's shapes"),
        (name = "email", description = "Mail to yourself, and your outbox"),
        (name = "notifications", description = "What the server had to tell you, and GitHub's secret scanning"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

/// Raw bytes in a request or response body (a component, a blob): a
/// string of any bytes, as OpenAPI spells binary.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // only its schema
pub struct Binary(Vec<u8>);

/// The bearer-token scheme the operations' `security` names.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some("A Valbox API token (`vbx_...`), or a val's per-call token".into());
        components.add_security_scheme(BEARER, SecurityScheme::Http(http));
    }
}

/// The document's root, before any route adds its path.
pub fn root() -> OpenApiRouter<App> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(openapi_json))
}

/// The whole document: every documented route's attribute, and the rules
/// below. Built once.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| finish(super::documented().into_openapi()))
}

/// This document, as JSON.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    summary = "This OpenAPI 3.1 document",
    responses((status = 200, description = "The document", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .expect("the document serializes")
    });
    ([(CONTENT_TYPE, "application/json")], json.as_str())
}

/// What every operation shares, added by rule rather than repeated in
/// each attribute: axum's `{*key}` spelled as OpenAPI's `{key}`, and the
/// errors an operation can answer from what it takes.
fn finish(mut doc: Document) -> Document {
    let paths = std::mem::take(&mut doc.paths.paths);
    for (path, mut item) in paths {
        for op in operations(&mut item) {
            add_errors(op);
        }
        doc.paths.paths.insert(path.replace("{*", "{"), item);
    }
    doc
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// The errors every operation of its kind can answer, where its
/// attribute did not already say them in its own words.
fn add_errors(op: &mut Operation) {
    let takes_input =
        op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || op.request_body.is_some();
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));
    // A token is refused wherever one may be sent; a scope can be
    // lacking only where one must be.
    let security = op.security.as_deref().unwrap_or_default();
    let takes_token = !security.is_empty();
    let needs_token = takes_token && !security.contains(&SecurityRequirement::default());
    let rules: [(bool, &str, &str); 6] = [
        (takes_input, "400", "Invalid path, query or body"),
        (
            takes_token,
            "401",
            "The token is missing (where one is needed), unknown, revoked or expired",
        ),
        (
            needs_token,
            "403",
            "The token lacks a scope this operation needs; the message names it",
        ),
        (
            json_body,
            "413",
            "The body is larger than the server's limit",
        ),
        (
            json_body,
            "415",
            "The body is not sent as `Content-Type: application/json`",
        ),
        (
            json_body,
            "422",
            "The JSON body does not have the shape this operation takes",
        ),
    ];
    for (applies, status, description) in rules {
        if applies && !op.responses.responses.contains_key(status) {
            op.responses
                .responses
                .insert(status.to_string(), error_response(description).into());
        }
    }
}

/// A response whose body is an [`ErrorResponse`].
pub fn error_response(description: &str) -> Response {
    let schema = Ref::from_schema_name("ErrorResponse");
    let mut response = Response::new(description);
    response
        .content
        .insert("application/json".into(), Content::new(Some(schema)));
    response
}

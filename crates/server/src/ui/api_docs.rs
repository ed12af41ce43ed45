//! The REST API page: every operation of the OpenAPI document served at
//! `/openapi.json`, grouped by tag, and the shapes they take and answer.
//! Rendered on the server from the same document; no script, so it works
//! where a browser reaches nothing but this server.

use maud::{Markup, html};
use serde_json::{Map, Value};

use super::SignedIn;
use super::layout;
use crate::api::openapi;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
const ERROR_SCHEMA: &str = "#/components/schemas/ErrorResponse";

pub async fn page(signed: Option<SignedIn>) -> Markup {
    let doc = serde_json::to_value(openapi::document()).unwrap_or_default();
    let body = html! {
        h1 { "REST API" }
        p {
            "Every route of this server's REST API, from its OpenAPI 3.1 document "
            a href="/openapi.json" id="openapi-json" { code { "/openapi.json" } }
            " (to generate a client from, or to test against). Send "
            code { "Authorization: Bearer <token>" } " with a token from "
            a href="/tokens" { "API tokens" } ". Every error is JSON: "
            code { "{\"error\": \"<code>\", \"message\": \"<what to do>\"}" }
            " (" a href="#schema-ErrorResponse" { "ErrorResponse" } "), so the statuses "
            "below name only the other shapes."
        }
        p.muted {
            "The vals' own endpoints (" code { "/x/{user}/{val}/..." } " and their hosts) answer "
            "whatever each val answers, so they are not described here."
        }
        nav aria-label="Tags" {
            @for tag in tags(&doc) {
                a.tag href={ "#tag-" (slug(&tag.0)) } { (tag.0) }
            }
        }
        @for (tag, description) in tags(&doc) {
            section id={ "tag-" (slug(&tag)) } {
                h2 { (tag) }
                @if !description.is_empty() { p.muted { (prose(&description)) } }
                (operations_table(&doc, &tag))
            }
        }
        h2 id="schemas" { "Shapes" }
        @if let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) {
            @for (name, schema) in schemas { (schema_section(name, schema)) }
        }
    };
    layout::page("REST API", signed.as_ref(), body)
}

/// The document's tags in its order, with their descriptions.
fn tags(doc: &Value) -> Vec<(String, String)> {
    let list = doc["tags"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|t| (text(&t["name"]), text(&t["description"])))
        .collect()
}

/// Every operation tagged `tag`: `(method, path, operation)`.
fn operations_of<'a>(doc: &'a Value, tag: &str) -> Vec<(&'static str, &'a str, &'a Value)> {
    let mut found = Vec::new();
    let Some(paths) = doc["paths"].as_object() else {
        return found;
    };
    for (path, item) in paths {
        for method in METHODS {
            let op = &item[method];
            let tagged = op["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == tag));
            if tagged {
                found.push((method, path.as_str(), op));
            }
        }
    }
    found
}

fn operations_table(doc: &Value, tag: &str) -> Markup {
    html! {
        table {
            thead { tr { th { "Route" } th { "What" } th { "Answers" } } }
            tbody {
                @for (method, path, op) in operations_of(doc, tag) {
                    tr id={ "op-" (text(&op["operationId"])) } {
                        td {
                            span.tag { (method.to_uppercase()) }
                            " " code { (path) }
                        }
                        td { (operation_details(op)) }
                        td { (responses(op)) }
                    }
                }
            }
        }
    }
}

fn operation_details(op: &Value) -> Markup {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let body = op
        .pointer("/requestBody/content")
        .and_then(Value::as_object);
    let public = op["security"]
        .as_array()
        .is_none_or(|s| s.iter().any(|r| r.as_object().is_some_and(Map::is_empty)));
    html! {
        strong { (text(&op["summary"])) }
        @if let Some(d) = op["description"].as_str() { br; span.muted { (prose(d)) } }
        @if !public { br; span.muted { "Needs a token." } }
        @for p in &params {
            br;
            code { (text(&p["name"])) } " "
            span.muted { "(" (text(&p["in"])) @if p["required"] == true { ", required" } "): " }
            (type_of(&p["schema"])) " "
            span.muted { (prose(&text(&p["description"]))) }
        }
        @if let Some(content) = body {
            @for (media, c) in content {
                br; "Body (" code { (media) } "): " (type_of(&c["schema"]))
            }
        }
    }
}

/// The status codes an operation answers, each with what its body is.
fn responses(op: &Value) -> Markup {
    let Some(all) = op["responses"].as_object() else {
        return html! {};
    };
    html! {
        @for (status, r) in all {
            @let schema = r.pointer("/content").and_then(Value::as_object)
                .and_then(|c| c.values().next()).map(|c| &c["schema"])
                .filter(|s| s["$ref"] != ERROR_SCHEMA);
            span.tag title=(text(&r["description"])) {
                (status)
                @if let Some(s) = schema { " " (type_of(s)) }
            }
        }
    }
}

fn schema_section(name: &str, schema: &Value) -> Markup {
    let properties = schema["properties"].as_object();
    let required: Vec<&str> = (schema["required"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    html! {
        section id={ "schema-" (name) } {
            h3 { code { (name) } }
            @if let Some(d) = schema["description"].as_str() { p.muted { (prose(d)) } }
            @if let Some(props) = properties {
                table {
                    tbody {
                        @for (prop, s) in props {
                            tr {
                                td { code { (prop) } @if required.contains(&prop.as_str()) { " *" } }
                                td { (type_of(s)) }
                                td.muted { (prose(&text(&s["description"]))) }
                            }
                        }
                    }
                }
            } @else {
                p { (type_of(schema)) }
            }
        }
    }
}

/// A schema in a few words: a link to a named shape, or its type.
fn type_of(schema: &Value) -> Markup {
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.rsplit('/').next().unwrap_or(target);
        return html! { a href={ "#schema-" (name) } { (name) } };
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema[key].as_array() {
            let join = if key == "allOf" { " + " } else { " or " };
            return html! {
                @for (i, part) in parts.iter().enumerate() {
                    @if i > 0 { (join) } (type_of(part))
                }
            };
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let names: Vec<String> = values.iter().map(Value::to_string).collect();
        return html! { code { (names.join(" | ")) } };
    }
    let kind = match &schema["type"] {
        Value::Array(types) => types.iter().map(text).collect::<Vec<_>>().join(" or "),
        Value::String(t) => t.clone(),
        _ => "any".into(),
    };
    html! {
        @if kind.starts_with("array") {
            "array of " (type_of(&schema["items"]))
        } @else if kind == "object" && schema["additionalProperties"].is_object() {
            "map of " (type_of(&schema["additionalProperties"]))
        } @else {
            (kind)
            @if let Some(f) = schema["format"].as_str() { " (" (f) ")" }
        }
    }
}

/// Text with `code` spans, as the document's descriptions write them.
fn prose(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split('`').enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A tag as an HTML id: `least privilege` -> `least-privilege`.
fn slug(tag: &str) -> String {
    tag.replace(' ', "-")
}

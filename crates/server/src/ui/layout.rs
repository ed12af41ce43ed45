//! The page shell (header, navigation, sign-out), the stylesheet, and
//! small pieces every page uses.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use maud::{DOCTYPE, Markup, html};

use super::SignedIn;

/// A whole page titled `title`, with navigation when signed in.
pub fn page(title: &str, signed: Option<&SignedIn>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Valbox" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    a.brand href="/" { "Valbox" }
                    @if let Some(signed) = signed {
                        nav aria-label="Main" {
                            a href="/vals" { "Vals" }
                            a href="/tokens" { "API tokens" }
                            a href="/account" { "Account" }
                            a href="/api" { "API" }
                        }
                        form.inline method="post" action="/logout" {
                            (csrf(signed))
                            span.who { (signed.who.username) }
                            button.link type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden field that proves a form came from this site.
pub fn csrf(signed: &SignedIn) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.session.csrf); }
}

pub fn error(message: &str) -> Markup {
    html! {
        h1 { "That did not work" }
        p.error role="alert" { (message) }
        p { a href="/" { "Back to Valbox" } }
    }
}

/// A millisecond timestamp as a short UTC date and time.
pub fn when(ms: i64) -> String {
    let iso = valbox_model::iso8601(ms);
    iso.get(..16).unwrap_or(&iso).replace('T', " ")
}

pub async fn stylesheet() -> impl IntoResponse {
    // The one answer of the UI that holds nothing personal.
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
}

const STYLE: &str = r#"
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --accent: #0a58ca; --bad: #b42318; --bg: #fff; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; padding: .75rem 1.25rem; border-bottom: 1px solid var(--line); background: var(--soft); }
header .brand { font-weight: 700; color: var(--fg); text-decoration: none; margin-right: auto; }
header nav { display: flex; gap: 1rem; }
header nav a, a { color: var(--accent); }
main { max-width: 62rem; margin: 0 auto; padding: 1.25rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 1.75rem 0 .5rem; }
table { width: 100%; border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .9rem; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9rem; }
form { margin: .5rem 0; }
form.inline { display: inline; margin: 0; }
label { font-weight: 600; margin-right: .5rem; }
input[type=text], input:not([type]), input[type=password], input[type=number], select { font: inherit; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 6px; min-width: 14rem; }
button { font: inherit; padding: .35rem .9rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.secondary, button.link { background: transparent; color: var(--accent); }
button.link { border: none; padding: 0 .25rem; text-decoration: underline; }
button.danger { background: var(--bad); border-color: var(--bad); }
button:focus-visible, a:focus-visible, input:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
fieldset { border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem; margin: .75rem 0; }
legend { font-weight: 600; padding: 0 .25rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr)); gap: .35rem 1rem; }
.grid label { font-weight: 400; }
.muted { color: var(--muted); }
.error { color: var(--bad); font-weight: 600; }
.warning { color: #8a4b00; }
.secret { display: flex; gap: .5rem; align-items: center; background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: .75rem; overflow-wrap: anywhere; }
.tag { display: inline-block; border: 1px solid var(--line); border-radius: 999px; padding: 0 .5rem; font-size: .85rem; margin: 0 .2rem .2rem 0; }
.tag.unused { border-style: dashed; color: var(--muted); }
.switch { display: flex; align-items: center; gap: .4rem; font-weight: 400; }
.who { color: var(--muted); margin-right: .25rem; }
@media (max-width: 40rem) { th:nth-child(n+4), td:nth-child(n+4) { display: none; } }
"#;

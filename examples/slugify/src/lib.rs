//! `slugify`: a library val. It exports the WIT interface
//! `valbox-examples:slugify/slug` (see `wit/slug.wit`) instead of a
//! handler, so it is not called over HTTP: other vals import the interface
//! and name this val at deploy (`--dep USER/slugify`), and it runs inside
//! their calls with only the scopes they grant it.
//!
//! `probe` shows that view from inside: by default every capability is
//! refused, and the caller's env vars, blobs and network stay out of reach.

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "library" });
}

use bindings::exports::valbox_examples::slugify::slug::Guest;
use valbox_sdk::{blob, env, fetch};

struct Slug;

impl Guest for Slug {
    fn slugify(text: String) -> String {
        let mut slug = String::with_capacity(text.len());
        for c in text.chars().flat_map(char::to_lowercase) {
            if c.is_alphanumeric() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        slug.trim_end_matches('-').to_string()
    }

    fn probe(what: String) -> String {
        match what.split_once(':') {
            Some(("env", name)) => match env::get(name) {
                Ok(Some(value)) => format!("env {name} = {value}"),
                Ok(None) => format!("env {name} is not set"),
                Err(e) => format!("env {name}: {e}"),
            },
            Some(("blob", key)) => match blob::get(key) {
                Ok(Some(bytes)) => format!("blob {key} = {}", String::from_utf8_lossy(&bytes)),
                Ok(None) => format!("blob {key} does not exist"),
                Err(e) => format!("blob {key}: {e}"),
            },
            Some(("fetch", url)) => match fetch::get(url, &[]) {
                Ok(response) => format!("fetch {url}: status {}", response.status),
                Err(e) => format!("fetch {url}: {e}"),
            },
            _ => format!("cannot probe `{what}`: use env:NAME, blob:KEY or fetch:URL"),
        }
    }
}

bindings::export!(Slug with_types_in bindings);

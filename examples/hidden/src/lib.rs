//! `hidden`: a script val with a secret, meant to stay private.
//!
//! `["Ada"]` gives `{"greeting": "<SAUCE>, Ada!"}`, where `SAUCE` is the
//! val's env var. Kept private, nobody else can read or call it; a public
//! val of the same owner (`wrapper`) can call it as an API, so anyone gets
//! the greeting and nobody gets the sauce.

use serde_json::{Value, json};

fn greet(args: Vec<Value>) -> Result<Value, String> {
    let name = args.first().and_then(Value::as_str).unwrap_or("world");
    let sauce = valbox_sdk::env::get("SAUCE")
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| "Hello".to_string());
    Ok(json!({ "greeting": format!("{sauce}, {name}!") }))
}

valbox_sdk::script_val!(greet);

//! `echo`: the smallest script val, called through the Run API.
//!
//! Returns its arguments unchanged: `["a", 1]` gives `["a", 1]`. When the
//! first argument is the string `"fail"` it fails instead, to show how a
//! script reports an error.

use serde_json::Value;

/// `args` is the JSON array the caller passed; the `Ok` value becomes the
/// run's JSON result and an `Err` message its error.
fn echo(args: Vec<Value>) -> Result<Value, String> {
    if args.first().and_then(Value::as_str) == Some("fail") {
        return Err("echo was asked to fail".to_string());
    }
    Ok(Value::Array(args))
}

// Export `echo` as this component's script entry point.
valbox_sdk::script_val!(echo);

//! Env var names and the JSON the API shows of a var: never its value.

use serde::Serialize;

use super::CALL_TOKEN_VAR;
use valbox_model::iso8601;
use valbox_store::EnvVarMeta;

const MAX_KEY_LEN: usize = 128;

/// What the API shows of an env var: never its value.
/// An env var as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EnvVar)]
pub struct EnvVarJson {
    key: String,
    description: String,
    created_at: String,
    updated_at: String,
}

impl From<EnvVarMeta> for EnvVarJson {
    fn from(m: EnvVarMeta) -> Self {
        Self {
            key: m.key,
            description: m.description,
            created_at: iso8601(m.created_at),
            updated_at: iso8601(m.updated_at),
        }
    }
}

pub(super) fn sealing_context(val_id: &str, key: &str) -> String {
    format!("env/{val_id}/{key}")
}

pub fn validate_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let starts_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_ok
        || key.len() > MAX_KEY_LEN
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "invalid env var name `{key}`: use letters, digits and `_`, not starting with a digit, at most {MAX_KEY_LEN} characters"
        ));
    }
    if key == CALL_TOKEN_VAR {
        return Err(format!(
            "`{CALL_TOKEN_VAR}` is reserved for the call's own API token"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        assert!(validate_key("API_KEY").is_ok());
        assert!(validate_key("_x1").is_ok());
        assert!(validate_key("1X").is_err());
        assert!(validate_key("A-B").is_err());
        assert!(validate_key("").is_err());
        assert!(validate_key("valtown").unwrap_err().contains("reserved"));
    }
}

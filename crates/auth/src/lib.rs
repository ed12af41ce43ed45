//! Tokens, scopes and principals: the token format, reading credentials
//! out of headers, call tokens, and (with the `store` feature, on by
//! default) resolving a request's token to its principal.

pub use call_tokens::{CallToken, CallTokens, MintedToken, TokenWatch};
pub use format::{
    API_TOKEN_PREFIX, CALL_TOKEN_PREFIX, generate_token, has_token_prefix, hash_token, well_formed,
};
pub use header::{bearer, carries_valbox_token};
#[cfg(feature = "store")]
pub use resolve::{AuthError, Authenticator};

mod call_tokens;
mod format;
mod header;
#[cfg(feature = "store")]
mod resolve;

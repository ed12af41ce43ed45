//! The token format: `vbx_` + 30 base62 characters + a 6-character base62
//! CRC32 of the body (GitHub's format), so a leaked token is recognisable
//! by pattern and a typo is rejected before any database lookup. Only the
//! SHA-256 of a token is stored: tokens are 178 bits of randomness, so a
//! fast hash is enough.

use sha2::{Digest, Sha256};

/// Prefix of personal API tokens.
pub const API_TOKEN_PREFIX: &str = "vbx_";
/// Prefix of the short-lived tokens minted for one call of a val.
pub const CALL_TOKEN_PREFIX: &str = "vbc_";
pub(crate) const BODY_LEN: usize = 30;
pub(crate) const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Make a new token with `prefix`. Returns the token and its stored hash.
pub fn generate_token(prefix: &str) -> (String, String) {
    let mut body = String::with_capacity(BODY_LEN);
    let mut buf = [0u8; 64];
    while body.len() < BODY_LEN {
        getrandom::fill(&mut buf).expect("the OS random number generator failed");
        // 248 = 4 * 62: rejecting larger bytes keeps the draw uniform.
        for b in buf.iter().filter(|b| **b < 248) {
            if body.len() == BODY_LEN {
                break;
            }
            body.push(BASE62[(*b % 62) as usize] as char);
        }
    }
    let token = format!("{prefix}{body}{}", checksum(&body));
    let hash = hash_token(&token);
    (token, hash)
}

fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

/// Check a token's shape and checksum without touching the database.
pub fn well_formed(token: &str, prefix: &str) -> bool {
    let Some(rest) = token.strip_prefix(prefix) else {
        return false;
    };
    if rest.len() != BODY_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, sum) = rest.split_at(BODY_LEN);
    checksum(body) == sum
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` starts like a Valbox token of either kind.
pub fn has_token_prefix(token: &str) -> bool {
    token.starts_with(API_TOKEN_PREFIX) || token.starts_with(CALL_TOKEN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let (a, ha) = generate_token(API_TOKEN_PREFIX);
        let (b, _) = generate_token(API_TOKEN_PREFIX);
        assert_ne!(a, b);
        assert_eq!(a.len(), API_TOKEN_PREFIX.len() + BODY_LEN + CHECKSUM_LEN);
        assert!(well_formed(&a, API_TOKEN_PREFIX));
        assert_eq!(ha, hash_token(&a));
    }

    #[test]
    fn a_typo_fails_the_checksum() {
        let (token, _) = generate_token(API_TOKEN_PREFIX);
        let mut bytes = token.into_bytes();
        let i = API_TOKEN_PREFIX.len() + 3;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap();
        assert!(!well_formed(&typo, API_TOKEN_PREFIX));
        assert!(!well_formed("vbx_short", API_TOKEN_PREFIX));
        assert!(!well_formed(
            &typo.replacen("vbx_", "ghp_", 1),
            API_TOKEN_PREFIX
        ));
    }
}

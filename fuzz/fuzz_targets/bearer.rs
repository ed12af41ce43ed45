//! The `Authorization` header parser and the token-leak guard.
//!
//! - `bearer` finds a credential only under the `Bearer` scheme, trimmed,
//!   and finds the same one again in any other spelling of the header.
//! - `carries_valbox_token` finds a well-formed token hidden in the input
//!   as it is, percent-encoded up to four times, or in base64: what the
//!   guard misses would reach a val.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;
use valbox_auth::{API_TOKEN_PREFIX, bearer, carries_valbox_token, well_formed};

/// A token of the right shape and checksum (made up for the fuzzer).
const TOKEN: &str = "vbx_Fuzz0TokenBody0123456789abcdef4DZkbr";

fuzz_target!(|data: &[u8]| {
    assert!(well_formed(TOKEN, API_TOKEN_PREFIX));
    carries_valbox_token(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_bearer(text);
    check_hidden_token(text);
});

fn check_bearer(header: &str) {
    let Some(token) = bearer(header) else {
        return;
    };
    assert!(!token.is_empty());
    assert_eq!(token, token.trim_matches(|c: char| c.is_ascii_whitespace()));
    let scheme = header.trim_start_matches(|c: char| c.is_ascii_whitespace());
    assert!(
        scheme
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
    );
    for spelling in [
        format!("Bearer {token}"),
        format!("bearer\t{token}"),
        format!(" BEARER  {token} \t"),
    ] {
        assert_eq!(bearer(&spelling), Some(token), "{spelling:?}");
    }
}

/// The input's text around the token, in every spelling the guard knows.
fn check_hidden_token(text: &str) {
    let middle = (0..=text.len() / 2)
        .rev()
        .find(|&i| text.is_char_boundary(i));
    let (before, after) = text.split_at(middle.unwrap_or(0));
    let mut spellings = vec![format!("{before}{TOKEN}{after}")];
    let mut encoded = TOKEN.to_string();
    for _ in 0..4 {
        encoded = encoded.bytes().map(|b| format!("%{b:02X}")).collect();
        spellings.push(format!("{before} {encoded} {after}"));
    }
    let inner = format!("{before}{TOKEN}{after}");
    spellings.push(format!("{before} {} {after}", STANDARD.encode(&inner)));
    spellings.push(format!(
        "{before}.{}.{after}",
        URL_SAFE_NO_PAD.encode(&inner)
    ));
    for spelling in spellings {
        assert!(carries_valbox_token(spelling.as_bytes()), "{spelling:?}");
    }
}

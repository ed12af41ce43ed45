//! Reading credentials out of request headers, one way for every route.
//!
//! `Authorization` is `scheme credentials`: the scheme is case-insensitive
//! and any run of whitespace separates the two (RFC 9110, section 11.4).
//! Whether a header *carries* a Valbox token is a separate, wider question
//! asked of every header a val would see: there the token may hide under
//! any scheme, inside Basic auth's base64, or percent-encoded.

use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use percent_encoding::percent_decode;

use crate::format::{API_TOKEN_PREFIX, BODY_LEN, CALL_TOKEN_PREFIX, CHECKSUM_LEN, well_formed};

/// The length of a token of either kind (both prefixes are four bytes).
const TOKEN_LEN: usize = API_TOKEN_PREFIX.len() + BODY_LEN + CHECKSUM_LEN;

/// The credential of a `Bearer` header, in any case and spacing; `None`
/// for any other scheme or a header with no credential.
pub fn bearer(header: &str) -> Option<&str> {
    let header = header.trim_matches(is_space);
    let (scheme, rest) = header.split_once(is_space)?;
    let token = rest.trim_matches(is_space);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn is_space(c: char) -> bool {
    c.is_ascii_whitespace()
}

/// Whether `value` holds a well-formed Valbox token of either kind,
/// anywhere: as it is, percent-decoded (however many times), or inside a
/// base64 run (Basic auth, a JWT's segments, JSON around a base64 string).
/// Such a value is the platform's and never reaches a val.
pub fn carries_valbox_token(value: &[u8]) -> bool {
    if value.len() < TOKEN_LEN {
        return false;
    }
    let mut text = Cow::Borrowed(value);
    // Each round of percent-decoding that changes the text is a new spelling.
    for _ in 0..=4 {
        if holds_token(&text) || in_base64(&text) {
            return true;
        }
        if !text.contains(&b'%') {
            return false;
        }
        let decoded: Vec<u8> = percent_decode(&text).collect();
        if decoded == *text {
            return false;
        }
        text = Cow::Owned(decoded);
    }
    false
}

/// Base64 as found in the wild, in either alphabet: padded or not, with
/// any trailing bits.
const LENIENT_BASE64: [GeneralPurpose; 2] = {
    let lenient = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    [
        GeneralPurpose::new(&alphabet::STANDARD, lenient),
        GeneralPurpose::new(&alphabet::URL_SAFE, lenient),
    ]
};

/// Whether any run of base64 characters in `bytes` decodes to a token.
fn in_base64(bytes: &[u8]) -> bool {
    let is_base64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_');
    bytes
        .split(|b| !is_base64(b))
        .filter(|run| run.len() >= TOKEN_LEN)
        .any(|run| {
            // Padding is optional and stray trailing bits are dropped, so a
            // run decodes whatever its length; one lone character is no byte.
            let run = &run[..run.len() - usize::from(run.len() % 4 == 1)];
            LENIENT_BASE64
                .iter()
                .any(|engine| engine.decode(run).is_ok_and(|bytes| holds_token(&bytes)))
        })
}

/// Whether a well-formed token starts anywhere in `bytes`.
fn holds_token(bytes: &[u8]) -> bool {
    memchr::memmem::find_iter(bytes, b"vb").any(|at| {
        let Some(candidate) = bytes.get(at..at + TOKEN_LEN) else {
            return false;
        };
        std::str::from_utf8(candidate).is_ok_and(|text| {
            well_formed(text, API_TOKEN_PREFIX) || well_formed(text, CALL_TOKEN_PREFIX)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate_token;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    #[test]
    fn bearer_takes_any_case_and_spacing() {
        for header in [
            "Bearer abc",
            "bearer abc",
            "BEARER abc",
            "Bearer\tabc",
            "Bearer   abc  ",
            " bEaReR \t abc",
        ] {
            assert_eq!(bearer(header), Some("abc"), "{header:?}");
        }
        for header in [
            "Basic abc",
            "Bearer",
            "Bearer   ",
            "Bearerabc",
            "Token abc",
            "",
        ] {
            assert_eq!(bearer(header), None, "{header:?}");
        }
    }

    #[test]
    fn tokens_are_found_under_any_scheme_and_encoding() {
        let (api, _) = generate_token(API_TOKEN_PREFIX);
        let (call, _) = generate_token(CALL_TOKEN_PREFIX);
        let basic = STANDARD.encode(format!("user:{api}"));
        let url_safe = URL_SAFE.encode(format!("{call}:"));
        for value in [
            format!("Bearer {api}"),
            format!("bearer\t{call}"),
            format!("Token {api}"),
            api.clone(),
            format!("Basic {basic}"),
            format!("basic {}", basic.trim_end_matches('=')),
            format!("Basic {url_safe}"),
            format!("session={api}; theme=dark"),
            format!("Bearer {}", api.replace('_', "%5F")),
            format!("Bearer {}", api.replace('_', "%255F")),
            format!("Basic \"{basic}\""),
            format!("{{\"auth\":\"{basic}\"}}"),
            format!(
                "eyJhbGciOiJub25lIn0.{}.sig",
                URL_SAFE.encode(format!("{{\"t\":\"{api}\"}}"))
            ),
        ] {
            assert!(carries_valbox_token(value.as_bytes()), "{value}");
        }
        let mut bytes = format!("Bearer {api}").into_bytes();
        bytes.push(0xff);
        assert!(carries_valbox_token(&bytes));
        for value in ["Bearer ghp_abc", "Basic dXNlcjpwYXNz", "vbx_tooshort"] {
            assert!(!carries_valbox_token(value.as_bytes()), "{value}");
        }
    }
}

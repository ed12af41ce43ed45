//! A val's fetch allowlist: which entries may be stored, and which hosts an
//! entry lets a val reach.

/// Checks a fetch allowlist entry before it is stored: `*`, a host name
/// (or an IPv4 address), or `*.` and a host name for its subdomains.
/// Lowercase letters, digits, `-` and `.` only, so a scheme, port, path or
/// space is refused rather than silently never matching.
pub fn validate_allowlist_entry(entry: &str) -> Result<(), String> {
    if entry == "*" {
        return Ok(());
    }
    let host = entry.strip_prefix("*.").unwrap_or(entry);
    let bad = |why: &str| Err(format!("`{entry}` is not a host name{why}"));
    if host.len() > 253 {
        return bad(" (longer than 253 characters)");
    }
    if let Some(c) = host
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '.'))
    {
        return bad(&format!(
            ": `{c}` is not allowed (use `*`, `host.example` or `*.example`, lowercase, no scheme, port or path)"
        ));
    }
    if host
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return bad(" (an empty or over-long label)");
    }
    Ok(())
}

/// `allowed` is a host name, or `*.example.com` for its subdomains.
pub(super) fn host_matches(host: &str, allowed: &str) -> bool {
    let allowed = allowed.to_ascii_lowercase();
    match allowed.strip_prefix("*.") {
        Some(parent) => host.ends_with(&format!(".{parent}")),
        None => host == allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_patterns() {
        assert!(host_matches("api.example.com", "api.example.com"));
        assert!(host_matches("a.example.com", "*.example.com"));
        assert!(!host_matches("example.com", "*.example.com"));
        assert!(!host_matches("evilexample.com", "*.example.com"));
        assert!(!host_matches("example.com.evil", "example.com"));
    }

    #[test]
    fn allowlist_entries_are_validated() {
        for ok in [
            "*",
            "example.com",
            "api-2.example.com",
            "*.example.org",
            "localhost",
            "10.0.0.1",
        ] {
            assert_eq!(validate_allowlist_entry(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "*.",
            "https://example.com",
            "example.com:443",
            "example.com/path",
            "exa mple.com",
            " example.com",
            "Example.com",
            "a..b",
            ".example.com",
            "example.com.",
            "*example.com",
            "a.*.example.com",
            "**",
            "[::1]",
            &"a".repeat(64),
            &format!("{}.com", "a.".repeat(127)),
        ] {
            assert!(
                validate_allowlist_entry(bad).is_err(),
                "{bad:?} was accepted"
            );
        }
    }
}

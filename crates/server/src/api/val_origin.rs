//! Keeping vals' answers away from the web UI's origin. A val is served
//! on its own host, `{user}-{val}.{suffix}`, and at `/x/{user}/{val}/` on
//! the UI's host for API clients. There a browser could let the val's
//! answer act on the UI (cookies for `/`, `Clear-Site-Data`, pages that
//! script the UI), so:
//!
//! - a browser navigating to `/x/...` is sent to the val's own host;
//! - anything else under `/x/` runs sandboxed (an opaque origin) and
//!   loses `Set-Cookie` and `Clear-Site-Data`;
//! - on its own host, a val still cannot clear or set cookies of the UI's
//!   host: `Clear-Site-Data` (whose `"cookies"` clears a whole site) and
//!   cookies whose `Domain` covers the UI's host are dropped.

use axum::http::header::{CONTENT_SECURITY_POLICY, HOST, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::App;

const CLEAR_SITE_DATA: HeaderName = HeaderName::from_static("clear-site-data");

/// For a browser's navigation to `/x/{user}/{val}/{below}`, a redirect to
/// the same path on the val's own host. Browsers set `Sec-Fetch-Mode`
/// themselves (a page's script cannot), so API clients are served as
/// before. Names a host cannot carry (capitals) are served here.
pub fn navigation_redirect(
    app: &App,
    headers: &HeaderMap,
    user: &str,
    val: &str,
    below: &str,
    query: Option<&str>,
) -> Option<Response> {
    let navigating = headers
        .get("sec-fetch-mode")
        .is_some_and(|m| m.as_bytes() == b"navigate");
    let hostable = |name: &str| {
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    if !navigating || !hostable(user) || !hostable(val) {
        return None;
    }
    let port = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit_once(':'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let mut url = format!(
        "{}://{user}-{val}.{}",
        scheme(app),
        app.config.val_host_suffix
    );
    if let Some(port) = port {
        url.push(':');
        url.push_str(port);
    }
    url.push('/');
    url.push_str(below);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    let location = HeaderValue::try_from(url).ok()?;
    Some((StatusCode::TEMPORARY_REDIRECT, [(LOCATION, location)]).into_response())
}

/// A val's answer served on the UI's host.
pub fn confine_to_ui_host(response: &mut Response) {
    let headers = response.headers_mut();
    headers.remove(SET_COOKIE);
    headers.remove(CLEAR_SITE_DATA);
    // Its pages run in an opaque origin of their own, so their scripts
    // cannot act as the signed-in user.
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads",
        ),
    );
}

/// A val's answer served on its own host.
pub fn confine_to_own_host(app: &App, response: &mut Response) {
    let ui = ui_host(app);
    let headers = response.headers_mut();
    headers.remove(CLEAR_SITE_DATA);
    let cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    if cookies.iter().any(|c| reaches_host(c, &ui)) {
        headers.remove(SET_COOKIE);
        for cookie in cookies.into_iter().filter(|c| !reaches_host(c, &ui)) {
            headers.append(SET_COOKIE, cookie);
        }
    }
}

/// Whether a `Set-Cookie` value names a `Domain` that `host` is in (a
/// cookie without one stays on the val's own host).
fn reaches_host(cookie: &HeaderValue, host: &str) -> bool {
    let text = String::from_utf8_lossy(cookie.as_bytes()).to_ascii_lowercase();
    text.split(';').skip(1).any(|attribute| {
        let Some((name, value)) = attribute.split_once('=') else {
            return false;
        };
        let domain = value.trim().trim_start_matches('.');
        name.trim() == "domain"
            && !domain.is_empty()
            && (host == domain || host.ends_with(&format!(".{domain}")))
    })
}

/// `https` when the UI is reached over TLS (its own, or a proxy's that the
/// public URL names), else `http`.
pub fn scheme(app: &App) -> &'static str {
    if app.config.tls.is_some() || app.config.public_url.starts_with("https://") {
        "https"
    } else {
        "http"
    }
}

/// The UI's host name, lower case, without a port.
fn ui_host(app: &App) -> String {
    let url = &app.config.public_url;
    let authority = url.split_once("://").map_or(url.as_str(), |(_, a)| a);
    let authority = authority.split('/').next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    host.trim_matches(['[', ']']).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::reaches_host;
    use axum::http::HeaderValue;

    #[test]
    fn a_cookie_reaches_the_ui_only_through_its_domain() {
        let reaches =
            |c: &'static str| reaches_host(&HeaderValue::from_static(c), "valbox.example.com");
        assert!(!reaches("a=1; Path=/"));
        assert!(reaches("a=1; Domain=example.com"));
        assert!(reaches("a=1; path=/; DOMAIN=.Example.COM"));
        assert!(reaches("a=1; Domain=valbox.example.com"));
        assert!(!reaches("a=1; Domain=alice-x.vals.example.net"));
        assert!(!reaches("a=1; Domain=ample.com"));
    }
}

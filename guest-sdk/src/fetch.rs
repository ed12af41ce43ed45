//! Outbound HTTP(S). Needs the `fetch` scope and a host the val's allowlist
//! permits; private and local addresses are refused by the host.

use crate::Error;
use crate::bindings::valbox::platform::fetch as raw;

/// An outbound request and the response to it.
pub use raw::{Request as FetchRequest, Response as FetchResponse};

/// Send `request`, following up to five redirects.
///
/// ```no_run
/// use valbox_sdk::fetch::{self, FetchRequest};
/// let response = fetch::fetch(&FetchRequest {
///     method: "POST".into(),
///     url: "https://api.example.com/items".into(),
///     headers: vec![("content-type".into(), "application/json".into())],
///     body: br#"{"name":"x"}"#.to_vec(),
/// })?;
/// println!("{}", response.status);
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn fetch(request: &FetchRequest) -> Result<FetchResponse, Error> {
    raw::fetch(request).map_err(Error::from)
}

/// `GET url` with optional extra headers.
///
/// ```no_run
/// let page = valbox_sdk::fetch::get("https://example.com/", &[])?;
/// println!("{}", String::from_utf8_lossy(&page.body));
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<FetchResponse, Error> {
    fetch(&FetchRequest {
        method: "GET".into(),
        url: url.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: Vec::new(),
    })
}

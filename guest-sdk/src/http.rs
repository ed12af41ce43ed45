//! The request an HTTP val receives and the response it returns.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The request an HTTP val receives.
///
/// ```no_run
/// use valbox_sdk::{Request, Response};
///
/// fn handler(req: Request) -> Response {
///     let agent = req.header("user-agent").unwrap_or("someone");
///     Response::text(format!("{} {} from {agent}", req.method, req.path))
/// }
/// # valbox_sdk::http_val!(handler);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Upper-case method, e.g. `GET`.
    pub method: String,
    /// The path below the val's root, starting with `/`.
    pub path: String,
    /// The raw query string without the `?`, empty when absent.
    pub query: String,
    /// The request's headers, in the order they arrived.
    pub headers: Vec<(String, String)>,
    /// The request's body; empty when it has none.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of the first header called `name`, compared
    /// case-insensitively.
    ///
    /// ```
    /// use valbox_sdk::Request;
    ///
    /// let req = Request {
    ///     headers: vec![("Content-Type".into(), "text/plain".into())],
    ///     ..Request::default()
    /// };
    /// assert_eq!(req.header("content-type"), Some("text/plain"));
    /// assert_eq!(req.header("accept"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The value of the first query parameter called `name`, percent-decoded
    /// with `+` read as a space (as HTML forms encode them).
    ///
    /// A parameter without `=` has the empty value. Invalid UTF-8 after
    /// decoding is replaced by U+FFFD.
    ///
    /// ```
    /// use valbox_sdk::Request;
    ///
    /// let req = Request { query: "name=Ada+Lovelace&city=M%C3%BCnchen&flag".into(), ..Request::default() };
    /// assert_eq!(req.query_param("name").as_deref(), Some("Ada Lovelace"));
    /// assert_eq!(req.query_param("city").as_deref(), Some("München"));
    /// assert_eq!(req.query_param("flag").as_deref(), Some(""));
    /// assert_eq!(req.query_param("missing"), None);
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// Every query parameter, decoded, in order (a name may repeat).
    ///
    /// ```
    /// use valbox_sdk::Request;
    ///
    /// let req = Request { query: "a=1&b=x%20y&a=2".into(), ..Request::default() };
    /// let pairs: Vec<(String, String)> = req.query_pairs().collect();
    /// assert_eq!(pairs, [("a".into(), "1".into()), ("b".into(), "x y".into()), ("a".into(), "2".into())]);
    /// ```
    pub fn query_pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .map(|(key, value)| (percent_decode(key), percent_decode(value)))
    }

    /// The body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// When the body is not valid UTF-8.
    ///
    /// ```
    /// use valbox_sdk::Request;
    ///
    /// let req = Request { body: b"hello".to_vec(), ..Request::default() };
    /// assert_eq!(req.text(), Ok("hello"));
    /// ```
    pub fn text(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.body)
    }

    /// The body parsed as JSON into any deserialisable type.
    ///
    /// # Errors
    ///
    /// When the body is not valid JSON of the expected shape.
    ///
    /// ```
    /// use valbox_sdk::Request;
    ///
    /// let req = Request { body: br#"{"n": 2}"#.to_vec(), ..Request::default() };
    /// let value: serde_json::Value = req.json()?;
    /// assert_eq!(value["n"], 2);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// The response an HTTP val returns.
///
/// Build one with a constructor ([`Response::text`], [`Response::html`],
/// [`Response::json`], [`Response::new`]) and adjust it with the `with_*`
/// builders, or fill in the fields directly.
///
/// ```
/// use valbox_sdk::Response;
///
/// let res = Response::text("created")
///     .with_status(201)
///     .with_header("location", "/items/7");
/// assert_eq!(res.status, 201);
/// assert_eq!(res.body, b"created");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The response's headers, in order. Several headers may share a name.
    pub headers: Vec<(String, String)>,
    /// The response's body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with the given status, no headers and an empty body.
    ///
    /// ```
    /// use valbox_sdk::Response;
    ///
    /// let res = Response::new(204);
    /// assert_eq!(res.status, 204);
    /// assert!(res.headers.is_empty() && res.body.is_empty());
    /// ```
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A 200 response with a plain-text body
    /// (`content-type: text/plain; charset=utf-8`).
    ///
    /// ```
    /// use valbox_sdk::Response;
    ///
    /// let res = Response::text("hi");
    /// assert_eq!(res.headers, [("content-type".to_string(), "text/plain; charset=utf-8".to_string())]);
    /// ```
    pub fn text(body: impl Into<String>) -> Self {
        Response::new(200)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// A 200 response with an HTML body
    /// (`content-type: text/html; charset=utf-8`).
    ///
    /// ```
    /// use valbox_sdk::Response;
    ///
    /// let res = Response::html("<p>hi</p>");
    /// assert_eq!(res.status, 200);
    /// assert_eq!(res.body, b"<p>hi</p>");
    /// ```
    pub fn html(body: impl Into<String>) -> Self {
        Response::new(200)
            .with_header("content-type", "text/html; charset=utf-8")
            .with_body(body.into())
    }

    /// A 200 response with `value` serialised as JSON
    /// (`content-type: application/json`).
    ///
    /// Should serialisation fail (a map with non-string keys, a failing
    /// `Serialize` impl), the response is a 500 with the error as plain text.
    ///
    /// ```
    /// use valbox_sdk::Response;
    ///
    /// let res = Response::json(&serde_json::json!({"ok": true}));
    /// assert_eq!(res.body, br#"{"ok":true}"#);
    /// ```
    pub fn json<T: Serialize>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(200)
                .with_header("content-type", "application/json")
                .with_body(body),
            Err(err) => Response::text(format!("cannot serialise the response as JSON: {err}"))
                .with_status(500),
        }
    }

    /// The same response with another status.
    ///
    /// ```
    /// use valbox_sdk::Response;
    ///
    /// assert_eq!(Response::text("gone").with_status(410).status, 410);
    /// ```
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The same response with the header `name` set to `value`, replacing
    /// any header of that name (compared case-insensitively).
    ///
    /// To send several headers of one name (`set-cookie`), push them onto
    /// [`Response::headers`] instead.
    ///
    /// ```
    /// use valbox_sdk::Response;
    ///
    /// let res = Response::text("{}").with_header("Content-Type", "application/json");
    /// assert_eq!(res.headers, [("Content-Type".to_string(), "application/json".to_string())]);
    /// ```
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.headers
            .retain(|(key, _)| !key.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
        self
    }

    /// The same response with another body.
    ///
    /// ```
    /// use valbox_sdk::Response;
    ///
    /// let res = Response::new(200).with_body(vec![0u8, 1, 2]);
    /// assert_eq!(res.body, [0, 1, 2]);
    /// ```
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// Decodes `%XX` escapes and `+` (as a space); malformed escapes stay as
/// they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%41%42"), "AB");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn query_params() {
        let req = Request {
            query: "a=1&b=&c&a=2&n%61me=x%26y".into(),
            ..Request::default()
        };
        assert_eq!(req.query_param("a").as_deref(), Some("1"));
        assert_eq!(req.query_param("b").as_deref(), Some(""));
        assert_eq!(req.query_param("c").as_deref(), Some(""));
        assert_eq!(req.query_param("name").as_deref(), Some("x&y"));
        assert_eq!(req.query_param("d"), None);
        assert_eq!(Request::default().query_param("a"), None);
    }

    #[test]
    fn response_constructors() {
        let res = Response::json(&vec![1, 2]).with_header("x-a", "1");
        assert_eq!(res.status, 200);
        assert_eq!(res.body, b"[1,2]");
        assert_eq!(res.headers.len(), 2);
        assert_eq!(res.headers[0].1, "application/json");

        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1], 2);
        assert_eq!(Response::json(&map).status, 500);
    }
}

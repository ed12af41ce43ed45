//! The shared HTTP client of fetch: rustls with webpki roots, the
//! address policy in its resolver, and redirects followed here, one
//! checked hop at a time.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, redirect};

use super::allowlist::host_matches;
use super::policy::{Policy, PolicyResolver, ResolveError};
use crate::RequestBudget;
use valbox_runtime::bindings::fetch::{Request, Response};
use valbox_runtime::bindings::types::Error;

const MAX_REDIRECTS: usize = 5;

/// Why one request was not sent or not answered. The `fetch` import
/// reports it as its WIT error (`From`); `wasi:http` as its own codes.
#[derive(Debug)]
pub enum SendError {
    /// The allowlist or the address policy refused it.
    Refused(String),
    /// Its host name has no address.
    Unresolved(String),
    /// Not a request that can be sent: its URL, scheme or headers.
    Invalid(String),
    /// It ran past the call's deadline, or the connection timed out.
    TimedOut(String),
    /// Over a limit: its body's size, or the request's fetch budget.
    OverLimit(String),
    /// The connection or the exchange failed.
    Failed(String),
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Refused(why) => Error::Denied(why),
            // A name that does not exist is the val's mistake to fix.
            SendError::Unresolved(why) | SendError::Invalid(why) => Error::Invalid(why),
            SendError::TimedOut(why) | SendError::OverLimit(why) => Error::Limit(why),
            SendError::Failed(why) => Error::Internal(why),
        }
    }
}

/// Dropped when a redirect changes origin (scheme, host or port), as
/// browsers and curl do: a val's call token must not follow a redirect
/// to another host.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// Dropped with the body when a redirect turns the request into a GET.
const BODY_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "content-encoding",
    "content-language",
    "content-location",
];

/// Limits of fetch, per request.
#[derive(Clone, Debug)]
pub struct FetchLimits {
    pub request_body_bytes: usize,
    pub response_body_bytes: usize,
}

/// The shared HTTP client: rustls with webpki roots, the policy resolver,
/// and no automatic redirects (each hop is checked here).
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: Arc<Policy>,
    pub limits: FetchLimits,
}

/// A fetch's request as it goes to each hop of its redirects.
struct Hop {
    method: Method,
    headers: HeaderMap,
    url: url::Url,
    body: Vec<u8>,
}

impl Hop {
    /// Follow a `status` redirect to `location`. Credentials were meant
    /// for the origin they were sent to, and a redirect that turns the
    /// request into a GET drops its body.
    fn redirect(&mut self, status: StatusCode, location: &HeaderValue) -> Result<(), Error> {
        let location = location
            .to_str()
            .map_err(|_| Error::Invalid("a redirect's Location is not text".into()))?;
        let next = self
            .url
            .join(location)
            .map_err(|e| Error::Invalid(format!("bad redirect `{location}`: {e}")))?;
        if next.origin() != self.url.origin() {
            for name in CREDENTIAL_HEADERS {
                self.headers.remove(name);
            }
        }
        if let Some(get) = redirected_method(status, &self.method) {
            self.method = get;
            self.body = Vec::new();
            for name in BODY_HEADERS {
                self.headers.remove(name);
            }
        }
        self.url = next;
        Ok(())
    }
}

impl Fetcher {
    pub fn new(policy: Policy, limits: FetchLimits) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .dns_resolver(Arc::new(PolicyResolver(policy.clone())))
            .no_proxy()
            .user_agent("valbox-fetch/0.1")
            .build()?;
        Ok(Self {
            client,
            policy,
            limits,
        })
    }

    /// Fetch `request` on behalf of a val allowed to reach `allowlist`
    /// (`None`: any public host), until `deadline`. Each request sent,
    /// each redirect hop included, is taken from `budget`: the request's
    /// that this call belongs to, shared with its nested calls and
    /// libraries.
    pub async fn fetch(
        &self,
        request: Request,
        allowlist: Option<&[String]>,
        deadline: Instant,
        budget: &RequestBudget,
    ) -> Result<Response, Error> {
        if request.body.len() > self.limits.request_body_bytes {
            return Err(Error::Limit(format!(
                "a fetch request body may hold at most {} bytes",
                self.limits.request_body_bytes
            )));
        }
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| Error::Invalid(format!("`{}` is not an HTTP method", request.method)))?;
        let mut hop = Hop {
            method,
            headers: header_map(&request.headers)?,
            url: parse_url(&request.url)?,
            body: request.body,
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        for _ in 0..=MAX_REDIRECTS {
            self.check_url(&hop.url, allowlist)?;
            take_one(budget)?;
            let builder = self
                .client
                .request(hop.method.clone(), hop.url.clone())
                .headers(hop.headers.clone())
                .body(hop.body.clone());
            let response = tokio::time::timeout_at(deadline, builder.send())
                .await
                .map_err(|_| Error::Limit("fetch ran past the call's deadline".into()))?
                .map_err(send_error)?;
            let status = response.status();
            if is_redirect(status)
                && let Some(location) = response.headers().get(header::LOCATION)
            {
                hop.redirect(status, location)?;
                continue;
            }
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = tokio::time::timeout_at(deadline, self.read_body(response))
                .await
                .map_err(|_| Error::Limit("fetch ran past the call's deadline".into()))??;
            return Ok(Response {
                status: status.as_u16(),
                headers,
                body,
            });
        }
        Err(Error::Limit(format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// Send one request of a `wasi:http` guest, which follows redirects
    /// itself (each hop a request of its own): checked as each hop of
    /// [`Fetcher::fetch`] is, its response handed back unread.
    pub async fn send_one(
        &self,
        request: http::Request<bytes::Bytes>,
        allowlist: Option<&[String]>,
        deadline: Instant,
        budget: &RequestBudget,
    ) -> Result<reqwest::Response, SendError> {
        if request.body().len() > self.limits.request_body_bytes {
            return Err(SendError::OverLimit(format!(
                "a fetch request body may hold at most {} bytes",
                self.limits.request_body_bytes
            )));
        }
        let request = reqwest::Request::try_from(request)
            .map_err(|e| SendError::Invalid(format!("fetch request is not valid: {e}")))?;
        self.check_url(request.url(), allowlist)?;
        take_one(budget)?;
        let deadline = tokio::time::Instant::from_std(deadline);
        tokio::time::timeout_at(deadline, self.client.execute(request))
            .await
            .map_err(|_| SendError::TimedOut("fetch ran past the call's deadline".into()))?
            .map_err(send_error)
    }

    fn check_url(&self, url: &url::Url, allowlist: Option<&[String]>) -> Result<(), SendError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SendError::Invalid(format!(
                "only http and https URLs can be fetched, not `{}`",
                url.scheme()
            )));
        }
        let host = url
            .host()
            .ok_or_else(|| SendError::Invalid(format!("`{url}` has no host")))?;
        let name = match &host {
            url::Host::Domain(d) => d.to_ascii_lowercase(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        if let Some(list) = allowlist
            && !list.iter().any(|allowed| host_matches(&name, allowed))
        {
            return Err(SendError::Refused(format!(
                "`{name}` is not in this val's fetch allowlist"
            )));
        }
        // Names are checked by the resolver after DNS; literals here.
        let literal = match host {
            url::Host::Ipv4(ip) => Some(std::net::IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(std::net::IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        };
        if let Some(ip) = literal {
            self.policy
                .check(ip)
                .map_err(|why| SendError::Refused(format!("fetch refused: {why}")))?;
        }
        Ok(())
    }

    async fn read_body(&self, response: reqwest::Response) -> Result<Vec<u8>, Error> {
        let limit = self.limits.response_body_bytes;
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(send_error)?;
            if body.len() + chunk.len() > limit {
                return Err(Error::Limit(format!(
                    "the fetched response is larger than {limit} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Count one request sent against the budget of the request it is part of.
fn take_one(budget: &RequestBudget) -> Result<(), SendError> {
    budget.take_fetch().map_err(|limit| {
        SendError::OverLimit(format!(
            "one request may make at most {limit} fetch requests, its nested calls \
             and libraries included (each redirect counts)"
        ))
    })
}

fn parse_url(text: &str) -> Result<url::Url, Error> {
    url::Url::parse(text).map_err(|e| Error::Invalid(format!("`{text}` is not a URL: {e}")))
}

/// The val's headers, refused as `invalid` when a name or value is not
/// one HTTP allows (the value is not echoed: it may be a secret).
fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let bad = |what: &str| Error::Invalid(format!("header `{name}` has an invalid {what}"));
        let key = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("name"))?;
        let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| bad("value"))?;
        map.append(key, value);
    }
    Ok(map)
}

/// Only these statuses redirect; other 3xx are answers for the val.
fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The method a redirect switches to, if it switches (the Fetch
/// standard): 303 makes anything but GET and HEAD a GET, and 301 and 302
/// make a POST one; 307 and 308 keep the method and body.
fn redirected_method(status: StatusCode, method: &Method) -> Option<Method> {
    let switch = match status.as_u16() {
        303 => *method != Method::GET && *method != Method::HEAD,
        301 | 302 => *method == Method::POST,
        _ => false,
    };
    switch.then_some(Method::GET)
}

fn send_error(e: reqwest::Error) -> SendError {
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(err) = source {
        match err.downcast_ref::<ResolveError>() {
            Some(ResolveError::Refused(why)) => {
                return SendError::Refused(format!("fetch refused: {why}"));
            }
            Some(ResolveError::Unresolved(why)) => return SendError::Unresolved(why.clone()),
            None => source = err.source(),
        }
    }
    if e.is_timeout() {
        return SendError::TimedOut("fetch timed out".into());
    }
    if e.is_builder() {
        return SendError::Invalid(format!("fetch request is not valid: {e}"));
    }
    SendError::Failed(format!("fetch failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_switch_to_get_as_browsers_do() {
        let s = |code| StatusCode::from_u16(code).unwrap();
        assert_eq!(redirected_method(s(303), &Method::POST), Some(Method::GET));
        assert_eq!(redirected_method(s(303), &Method::PUT), Some(Method::GET));
        assert_eq!(redirected_method(s(303), &Method::HEAD), None);
        assert_eq!(redirected_method(s(301), &Method::POST), Some(Method::GET));
        assert_eq!(redirected_method(s(302), &Method::POST), Some(Method::GET));
        assert_eq!(redirected_method(s(302), &Method::PUT), None);
        assert_eq!(redirected_method(s(307), &Method::POST), None);
        assert_eq!(redirected_method(s(308), &Method::POST), None);
        assert!(!is_redirect(s(300)) && !is_redirect(s(304)));
    }

    fn fetcher() -> Fetcher {
        let limits = FetchLimits {
            request_body_bytes: 1024,
            response_body_bytes: 1024,
        };
        Fetcher::new(Policy::default(), limits).unwrap()
    }

    /// Refused before any connection: the URL's port 9 is never reached.
    #[tokio::test]
    async fn bad_headers_are_invalid() {
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        for (name, value) in [("bad name", "v"), ("x-ok", "line\nbreak"), ("", "v")] {
            let request = Request {
                method: "GET".into(),
                url: "http://127.0.0.1:9/".into(),
                headers: vec![(name.into(), value.into())],
                body: Vec::new(),
            };
            let budget = RequestBudget::new("alice", &Default::default());
            let err = fetcher().fetch(request, None, deadline, &budget).await;
            assert!(matches!(err, Err(Error::Invalid(_))), "{name:?}: {err:?}");
            assert_eq!(budget.fetches_taken(), 0);
        }
    }

    /// A name DNS does not know is `invalid`, not `internal`. The resolver
    /// fails without asking DNS, so no traffic leaves the machine.
    #[tokio::test]
    async fn unresolvable_names_are_invalid() {
        struct NoSuchName;
        impl reqwest::dns::Resolve for NoSuchName {
            fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
                let why = format!("`{}` could not be resolved", name.as_str());
                Box::pin(async move { Err(ResolveError::Unresolved(why).into()) })
            }
        }
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(NoSuchName))
            .no_proxy()
            .build()
            .unwrap();
        let err = client
            .get("http://nxdomain.test/")
            .send()
            .await
            .unwrap_err();
        match Error::from(send_error(err)) {
            Error::Invalid(why) => assert!(why.contains("nxdomain.test"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}

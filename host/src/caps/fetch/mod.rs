//! Outbound HTTP(S) from vals: the host import (scope `fetch`, the val's
//! host allowlist, the address policy in `policy`), bounded by the call's
//! deadline and by size and count limits.

pub mod policy;

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use reqwest::redirect;

use super::CallContext;
use crate::runtime::bindings::fetch::{Host, Request, Response};
use crate::runtime::bindings::types::Error;
use policy::{Policy, PolicyResolver, Refused};

const MAX_REDIRECTS: usize = 5;

/// Limits of fetch, per call.
#[derive(Clone, Debug)]
pub struct FetchLimits {
    pub requests_per_call: u32,
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
    /// (`None`: any public host), until `deadline`.
    pub async fn fetch(
        &self,
        request: Request,
        allowlist: Option<&[String]>,
        deadline: Instant,
    ) -> Result<Response, Error> {
        if request.body.len() > self.limits.request_body_bytes {
            return Err(Error::Limit(format!(
                "a fetch request body may hold at most {} bytes",
                self.limits.request_body_bytes
            )));
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| Error::Invalid(format!("`{}` is not an HTTP method", request.method)))?;
        let mut url = parse_url(&request.url)?;
        let (mut method, mut body) = (method, request.body);
        let deadline = tokio::time::Instant::from_std(deadline);
        for _ in 0..=MAX_REDIRECTS {
            self.check_url(&url, allowlist)?;
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .body(body.clone());
            for (k, v) in &request.headers {
                builder = builder.header(k, v);
            }
            let response = tokio::time::timeout_at(deadline, builder.send())
                .await
                .map_err(|_| Error::Limit("fetch ran past the call's deadline".into()))?
                .map_err(send_error)?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(reqwest::header::LOCATION)
            {
                let location = location
                    .to_str()
                    .map_err(|_| Error::Invalid("a redirect's Location is not text".into()))?;
                url = url
                    .join(location)
                    .map_err(|e| Error::Invalid(format!("bad redirect `{location}`: {e}")))?;
                if status == reqwest::StatusCode::SEE_OTHER
                    || (status.as_u16() <= 302 && method == reqwest::Method::POST)
                {
                    method = reqwest::Method::GET;
                    body = Vec::new();
                }
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

    fn check_url(&self, url: &url::Url, allowlist: Option<&[String]>) -> Result<(), Error> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Invalid(format!(
                "only http and https URLs can be fetched, not `{}`",
                url.scheme()
            )));
        }
        let host = url
            .host()
            .ok_or_else(|| Error::Invalid(format!("`{url}` has no host")))?;
        let name = match &host {
            url::Host::Domain(d) => d.to_ascii_lowercase(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        if let Some(list) = allowlist
            && !list.iter().any(|allowed| host_matches(&name, allowed))
        {
            return Err(Error::Denied(format!(
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
                .map_err(|why| Error::Denied(format!("fetch refused: {why}")))?;
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

fn parse_url(text: &str) -> Result<url::Url, Error> {
    url::Url::parse(text).map_err(|e| Error::Invalid(format!("`{text}` is not a URL: {e}")))
}

/// `allowed` is a host name, or `*.example.com` for its subdomains.
fn host_matches(host: &str, allowed: &str) -> bool {
    let allowed = allowed.to_ascii_lowercase();
    match allowed.strip_prefix("*.") {
        Some(parent) => host.ends_with(&format!(".{parent}")),
        None => host == allowed,
    }
}

fn send_error(e: reqwest::Error) -> Error {
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Error::Denied(format!("fetch refused: {refused}"));
        }
        source = err.source();
    }
    if e.is_timeout() {
        return Error::Limit("fetch timed out".into());
    }
    Error::Internal(format!("fetch failed: {e}"))
}

impl Host for CallContext {
    async fn fetch(&mut self, request: Request) -> Result<Response, Error> {
        self.check("fetch")?;
        if self.fetch_count >= self.fetcher.limits.requests_per_call {
            return Err(Error::Limit(format!(
                "a call may make at most {} fetch requests",
                self.fetcher.limits.requests_per_call
            )));
        }
        self.fetch_count += 1;
        let fetcher = self.fetcher.clone();
        fetcher
            .fetch(request, self.fetch_allowlist.as_deref(), self.deadline)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::host_matches;

    #[test]
    fn allowlist_patterns() {
        assert!(host_matches("api.example.com", "api.example.com"));
        assert!(host_matches("a.example.com", "*.example.com"));
        assert!(!host_matches("example.com", "*.example.com"));
        assert!(!host_matches("evilexample.com", "*.example.com"));
        assert!(!host_matches("example.com.evil", "example.com"));
    }
}

//! What a val declares it needs (`valbox_sdk::scopes!`,
//! `valbox_sdk::fetch_hosts!`), read from its component at deploy, shown
//! against what it is granted, and granted when the deploy asks.

use serde::Serialize;

use crate::services::error::{ServiceError, ServiceResult};
use valbox_caps::fetch::validate_allowlist_entry;
use valbox_model::{Scope, Scopes};
use valbox_runtime::section_lines;

pub const SCOPES_SECTION: &str = "valbox:scopes";
pub const FETCH_HOSTS_SECTION: &str = "valbox:fetch-hosts";
pub const REUSE_SECTION: &str = "valbox:reuse";

/// A component's declarations.
#[derive(Clone, Default)]
pub struct Declared {
    pub scopes: Scopes,
    pub fetch_hosts: Vec<String>,
    /// Calls one instance may serve, if the val opts into reuse.
    pub reuse: Option<u32>,
}

impl Declared {
    /// Read from the component `bytes`; an unknown scope or a bad host is
    /// a 400 naming it.
    pub fn read(bytes: &[u8]) -> ServiceResult<Self> {
        let invalid = |m: String| {
            ServiceError::bad_request(
                "invalid_declaration",
                format!("the component's declarations: {m}"),
            )
        };
        let scopes = section_lines(bytes, SCOPES_SECTION).map_err(invalid)?;
        let scopes = Scopes::parse(&scopes.join(" ")).map_err(invalid)?;
        let mut fetch_hosts = section_lines(bytes, FETCH_HOSTS_SECTION).map_err(invalid)?;
        for host in &fetch_hosts {
            validate_allowlist_entry(host).map_err(invalid)?;
        }
        fetch_hosts.sort();
        fetch_hosts.dedup();
        let max = crate::api::vals::MAX_REUSE;
        let reuse = match section_lines(bytes, REUSE_SECTION)
            .map_err(invalid)?
            .as_slice()
        {
            [] => None,
            [n] => Some(n.parse().ok().filter(|n| *n <= max).ok_or_else(|| {
                invalid(format!(
                    "`{REUSE_SECTION}` must be a number of calls from 0 to {max}, not `{n}`"
                ))
            })?),
            _ => {
                return Err(invalid(format!(
                    "`{REUSE_SECTION}` is declared more than once"
                )));
            }
        };
        Ok(Self {
            scopes,
            fetch_hosts,
            reuse,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.scopes == Scopes::none() && self.fetch_hosts.is_empty() && self.reuse.is_none()
    }

    /// The scopes `held` needs to hold all of these (and `fetch` when it
    /// declares hosts).
    pub fn wanted(&self) -> Scopes {
        if self.fetch_hosts.is_empty() {
            self.scopes
        } else {
            self.scopes.with(Scope::Fetch)
        }
    }

    /// The fetch allowlist that also lets it reach its declared hosts:
    /// the current list and these; for a val allowed any host, just these.
    pub fn allowlist(&self, current: Option<&[String]>) -> Vec<String> {
        let mut hosts: Vec<String> = current.unwrap_or_default().to_vec();
        hosts.extend(self.fetch_hosts.iter().cloned());
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

/// The declarations as a deploy shows them.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeclaredView {
    pub scopes: Vec<String>,
    pub fetch_hosts: Vec<String>,
    /// Calls one instance may serve, if declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reuse: Option<u32>,
    /// Declared scopes the val's calls do not hold.
    pub not_granted: Vec<String>,
    /// Whether this deploy granted them.
    pub granted_now: bool,
}

impl DeclaredView {
    pub fn new(declared: &Declared, held: Scopes, granted_now: bool) -> Self {
        let names = |s: Scopes| s.iter().map(|s| s.to_string()).collect();
        let missing: Scopes = declared.wanted().iter().filter(|s| !held.has(*s)).collect();
        Self {
            scopes: names(declared.scopes),
            fetch_hosts: declared.fetch_hosts.clone(),
            reuse: declared.reuse,
            not_granted: names(missing),
            granted_now,
        }
    }
}

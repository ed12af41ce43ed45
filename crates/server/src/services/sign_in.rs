//! Sign-in links: made for a user, and bounded in how many are asked for
//! and mailed, per user, per requester and in all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use valbox_auth as auth;
use valbox_model::now_ms;
use valbox_store::{Store, StoreResult};

pub const LINK_PREFIX: &str = "vbl_";
/// How long a sign-in link works.
pub const LINK_TTL_MS: i64 = 15 * 60 * 1000;
/// Sign-in links that may be asked for per window: about one user, by one
/// requester (client address), and mailed in all. A user always holds a
/// live link from what was asked about them (links last longer than the
/// window), and made-up names mail nothing, so count nothing in all.
const LINKS_PER_USER: usize = 3;
const LINKS_PER_REQUESTER: usize = 10;
const LINKS_IN_ALL: usize = 300;
const LINK_WINDOW: Duration = Duration::from_secs(10 * 60);

/// A sign-in link for `username`, printed on the server's machine.
pub async fn login_link(store: &Store, username: &str, base: &str) -> StoreResult<Option<String>> {
    Ok(new_link(store, username, base).await?.map(|(_, url)| url))
}

/// A new sign-in link for `username`: the user's id and the link's URL
/// under `base`.
pub async fn new_link(
    store: &Store,
    username: &str,
    base: &str,
) -> StoreResult<Option<(String, String)>> {
    let Some(user) = store.users.by_name(username).await? else {
        return Ok(None);
    };
    let (secret, hash) = auth::generate_token(LINK_PREFIX);
    store
        .sessions
        .add_link(&user.id, &hash, now_ms() + LINK_TTL_MS)
        .await?;
    let url = format!("{}/login?link={secret}", base.trim_end_matches('/'));
    Ok(Some((user.id, url)))
}

/// Who asked for sign-in links lately, about whom, and how many were
/// mailed: each bounded per window.
#[derive(Default)]
pub struct SignInLimiter {
    asked: Mutex<Asked>,
}

#[derive(Default)]
struct Asked {
    about: HashMap<String, Vec<Instant>>,
    by: HashMap<IpAddr, Vec<Instant>>,
    mailed: Vec<Instant>,
}

impl SignInLimiter {
    /// Whether `requester` may ask for a link for `username` now; counts
    /// the request if so.
    pub fn allow(&self, requester: IpAddr, username: &str) -> Result<(), &'static str> {
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let recent = |t: &Instant| now.duration_since(*t) < LINK_WINDOW;
        asked.about.retain(|_, times| {
            times.retain(recent);
            !times.is_empty()
        });
        asked.by.retain(|_, times| {
            times.retain(recent);
            !times.is_empty()
        });
        if asked.by.get(&requester).map_or(0, Vec::len) >= LINKS_PER_REQUESTER {
            return Err(
                "you asked for many sign-in links lately; wait a few minutes and try again",
            );
        }
        if asked.about.get(username).map_or(0, Vec::len) >= LINKS_PER_USER {
            return Err(
                "several sign-in links were sent for this name lately; use the newest one \
                 in your mail (each works for 15 minutes), or wait a few minutes",
            );
        }
        asked.by.entry(requester).or_default().push(now);
        asked
            .about
            .entry(username.to_string())
            .or_default()
            .push(now);
        Ok(())
    }

    /// Whether another link may be mailed now, to anyone; counts it if so.
    pub fn allow_mail(&self) -> bool {
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        asked
            .mailed
            .retain(|t| now.duration_since(*t) < LINK_WINDOW);
        if asked.mailed.len() >= LINKS_IN_ALL {
            return false;
        }
        asked.mailed.push(now);
        true
    }
}

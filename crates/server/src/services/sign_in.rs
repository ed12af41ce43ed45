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
/// Sign-in links that may be asked for per window: for one user (counted
/// in the store, so across every node), by one requester (client
/// address), and mailed in all (both per node). A user always holds a live
/// link from what was asked about them (links last longer than the
/// window), and made-up names mail nothing, so count nothing in all.
const LINKS_PER_USER: u32 = 3;
const LINKS_PER_REQUESTER: usize = 10;
const LINKS_IN_ALL: usize = 300;
const LINK_WINDOW: Duration = Duration::from_secs(10 * 60);

/// A sign-in link for `username`, printed on the server's machine: an
/// operator's, never limited.
pub async fn login_link(store: &Store, username: &str, base: &str) -> StoreResult<Option<String>> {
    let Some(user) = store.users.by_name(username).await? else {
        return Ok(None);
    };
    let (secret, hash) = auth::generate_token(LINK_PREFIX);
    store
        .sessions
        .add_link(&user.id, &hash, now_ms() + LINK_TTL_MS)
        .await?;
    Ok(Some(link_url(base, &secret)))
}

/// What asking for a sign-in link on the web came to.
pub enum NewLink {
    NoSuchUser,
    /// The user was sent [`LINKS_PER_USER`] links in the window.
    TooMany,
    Made {
        user_id: String,
        url: String,
    },
}

/// A new sign-in link for `username`, within the per-user limit, under
/// `base`.
pub async fn new_link(store: &Store, username: &str, base: &str) -> StoreResult<NewLink> {
    let Some(user) = store.users.by_name(username).await? else {
        return Ok(NewLink::NoSuchUser);
    };
    let (secret, hash) = auth::generate_token(LINK_PREFIX);
    let now = now_ms();
    let window = now - LINK_WINDOW.as_millis() as i64;
    let made = store
        .sessions
        .add_link_within(&user.id, &hash, now + LINK_TTL_MS, LINKS_PER_USER, window)
        .await?;
    if !made {
        return Ok(NewLink::TooMany);
    }
    let url = link_url(base, &secret);
    Ok(NewLink::Made {
        user_id: user.id,
        url,
    })
}

fn link_url(base: &str, secret: &str) -> String {
    format!("{}/login?link={secret}", base.trim_end_matches('/'))
}

/// What to tell someone who asked for too many links for one name.
pub const TOO_MANY_FOR_USER: &str = "several sign-in links were sent for this name lately; use \
     the newest one in your mail (each works for 15 minutes), or wait a few minutes";

/// Who asked for sign-in links lately, and how many were mailed: each
/// bounded per window, on this node.
#[derive(Default)]
pub struct SignInLimiter {
    asked: Mutex<Asked>,
}

#[derive(Default)]
struct Asked {
    by: HashMap<IpAddr, Vec<Instant>>,
    mailed: Vec<Instant>,
}

impl SignInLimiter {
    /// Whether `requester` may ask for a link now. An ask is counted with
    /// [`SignInLimiter::count`] once it was not refused for its user, so a
    /// refusal costs the requester nothing.
    pub fn check(&self, requester: IpAddr) -> Result<(), &'static str> {
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let recent = |t: &Instant| now.duration_since(*t) < LINK_WINDOW;
        asked.by.retain(|_, times| {
            times.retain(recent);
            !times.is_empty()
        });
        if asked.by.get(&requester).map_or(0, Vec::len) >= LINKS_PER_REQUESTER {
            return Err(
                "you asked for many sign-in links lately; wait a few minutes and try again",
            );
        }
        Ok(())
    }

    /// Count an ask of `requester`'s.
    pub fn count(&self, requester: IpAddr) {
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        asked.by.entry(requester).or_default().push(Instant::now());
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

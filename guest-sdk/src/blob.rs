//! Blob storage in the val owner's namespace: keys are any UTF-8 string up
//! to 512 bytes, values any bytes. Reads need the `blob:read` scope, writes
//! `blob:write`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::valbox::platform::blob as raw;

/// A stored blob's key, size in bytes and last change (ms since the epoch).
pub use raw::BlobEntry;

/// The blob stored under `key`, or `None`.
///
/// ```no_run
/// let bytes = valbox_sdk::blob::get("avatar.png")?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    raw::get(key).map_err(Error::from)
}

/// Store `value` under `key`, replacing what was there.
///
/// ```no_run
/// valbox_sdk::blob::set("notes/today.txt", b"buy milk")?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
    raw::set(key, value).map_err(Error::from)
}

/// Every entry whose key starts with `prefix`, sorted by key.
///
/// ```no_run
/// for entry in valbox_sdk::blob::list("notes/")? {
///     println!("{} ({} bytes)", entry.key, entry.size);
/// }
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn list(prefix: &str) -> Result<Vec<BlobEntry>, Error> {
    raw::list(prefix).map_err(Error::from)
}

/// Delete `key`; deleting a missing key is not an error.
///
/// ```no_run
/// valbox_sdk::blob::delete("notes/today.txt")?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn delete(key: &str) -> Result<(), Error> {
    raw::delete(key).map_err(Error::from)
}

/// The JSON value stored under `key`, or `None`.
///
/// ```no_run
/// let count: Option<u64> = valbox_sdk::blob::get_json("visits")?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("blob `{key}` is not the expected JSON: {e}"))),
    }
}

/// Store `value` as JSON under `key`.
///
/// ```no_run
/// valbox_sdk::blob::set_json("visits", &42u64)?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Invalid(e.to_string()))?;
    set(key, &bytes)
}

/// The blob stored under `key` with its version (an opaque tag that
/// changes with every write), or `None`.
pub fn get_versioned(key: &str) -> Result<Option<(Vec<u8>, String)>, Error> {
    Ok(raw::get_versioned(key)?.map(|v| (v.value, v.version)))
}

/// Store `value` under `key` only if the blob is still at version
/// `expected` (`None`: only if it does not exist yet). `Ok(Ok(version))`
/// when written; `Ok(Err(current))` when the blob had moved on (its
/// current version, or `None` if it is gone): read it again and retry.
pub fn set_if(
    key: &str,
    value: &[u8],
    expected: Option<&str>,
) -> Result<Result<String, Option<String>>, Error> {
    Ok(match raw::set_if(key, value, expected)? {
        raw::SetOutcome::Written(version) => Ok(version),
        raw::SetOutcome::Conflict(current) => Err(current),
    })
}

/// How many times [`update_json`] reads again after losing a race.
const UPDATE_ATTEMPTS: usize = 64;

/// After the `attempt`-th lost race, wait a random while below
/// 2^attempt ms (at most 32 ms): contenders that all lost to one writer
/// spread out instead of all reading and writing again at once, which
/// would make N contenders cost N² attempts.
fn back_off(attempt: usize) {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let ceiling_us = 1000u64 << attempt.min(5);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    // splitmix64: the clock's low bits, spread over every bit.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    std::thread::sleep(Duration::from_micros((z ^ (z >> 31)) % ceiling_us));
}

/// Read the JSON under `key`, change it with `change`, and write it back
/// only if nobody wrote it in between, retrying otherwise: a
/// read-modify-write that never loses a concurrent update. Returns the
/// value written. For counters under heavy contention, or many related
/// values, SQLite (one transaction) is the better tool.
///
/// ```no_run
/// let visits: u64 = valbox_sdk::blob::update_json("visits", |n: Option<u64>| n.unwrap_or(0) + 1)?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn update_json<T: Serialize + DeserializeOwned>(
    key: &str,
    mut change: impl FnMut(Option<T>) -> T,
) -> Result<T, Error> {
    for attempt in 0..UPDATE_ATTEMPTS {
        let (current, version) = match get_versioned(key)? {
            Some((bytes, version)) => {
                let value = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::Invalid(format!("blob `{key}` is not the expected JSON: {e}"))
                })?;
                (Some(value), Some(version))
            }
            None => (None, None),
        };
        let next = change(current);
        let bytes = serde_json::to_vec(&next).map_err(|e| Error::Invalid(e.to_string()))?;
        if set_if(key, &bytes, version.as_deref())?.is_ok() {
            return Ok(next);
        }
        back_off(attempt);
    }
    Err(Error::Limit(format!(
        "blob `{key}` kept changing under {UPDATE_ATTEMPTS} attempts to update it; use SQLite for a value this contended"
    )))
}

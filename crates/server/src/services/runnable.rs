//! Finding a val to run by `user/name`: the lookup, who may see it, that
//! it is deployed and of the kind asked for. Shared by the HTTP routes and
//! vals calling vals, which differ only in who may see a private val and
//! in how a refusal reads.

use std::sync::Arc;

use crate::app::App;
use valbox_model::ValKind;
use valbox_store::{StoreError, ValRow};

/// Why no val can be run as asked.
pub enum NotRunnable {
    /// No such val, or one the caller may not see: the same to the caller.
    Missing,
    /// It has no deployed version yet.
    NotDeployed,
    /// It has no such version.
    NoSuchVersion(i64),
    /// Its deployed version is of this other kind.
    OtherKind(ValKind),
    /// The store failed, or cannot be reached.
    Failed(StoreError),
}

/// The val `user/name` if `visible` holds for it, it is deployed, and the
/// version to run (its latest, or `version`) is a `kind` val. With
/// `version`, the val's `latest` is that version.
pub async fn find_runnable(
    app: &App,
    user: &str,
    name: &str,
    version: Option<i64>,
    kind: ValKind,
    visible: impl FnOnce(&ValRow) -> bool,
) -> Result<Arc<ValRow>, NotRunnable> {
    let mut val = app
        .val_by_name(user, name)
        .await
        .map_err(NotRunnable::Failed)?
        .filter(|val| visible(val))
        .ok_or(NotRunnable::Missing)?;
    if let Some(n) = version {
        let pinned = app
            .store
            .vals
            .version(&val.id, n)
            .await
            .map_err(NotRunnable::Failed)?
            .ok_or(NotRunnable::NoSuchVersion(n))?;
        val = Arc::new(ValRow {
            latest: Some(pinned),
            ..(*val).clone()
        });
    }
    let latest = val.latest.as_ref().ok_or(NotRunnable::NotDeployed)?;
    if latest.kind != kind {
        return Err(NotRunnable::OtherKind(latest.kind));
    }
    Ok(val)
}

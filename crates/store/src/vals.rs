//! Vals, their settings and their versions.

use async_trait::async_trait;

use valbox_model::{Privacy, Scope, Scopes, ValKind};

use crate::{Room, StoreResult, Stored};

#[derive(Clone, Debug)]
pub struct ValRow {
    pub id: String,
    pub owner_id: String,
    pub owner_name: String,
    pub name: String,
    pub privacy: Privacy,
    pub description: String,
    pub scopes: Scopes,
    pub created_at: i64,
    /// Hosts the val may fetch from; `None` means any public host.
    pub fetch_allowlist: Option<Vec<String>>,
    /// How many calls one instance may serve (its owner opted in); 0 or 1:
    /// a fresh instance for every call.
    pub reuse: u32,
    /// The newest version, which serves; `None` before the first deploy.
    pub latest: Option<VersionRow>,
}

#[derive(Clone, Debug)]
pub struct VersionRow {
    pub version: i64,
    pub sha256: String,
    pub size: i64,
    pub kind: ValKind,
    pub created_at: i64,
    /// The libraries its imports resolve to, in the deploy's order.
    pub libraries: Vec<LibraryRef>,
}

/// A library a version imports: which val, at which version, granted what.
#[derive(Clone, Debug)]
pub struct LibraryRef {
    pub library_id: String,
    /// `None`: the owner's own library, following its latest version.
    pub version: Option<i64>,
    /// The scopes its caller granted it.
    pub grants: Scopes,
}

/// A val to create.
#[derive(Clone, Debug)]
pub struct NewVal {
    pub owner_id: String,
    pub name: String,
    pub privacy: Privacy,
    pub description: String,
    pub scopes: Scopes,
}

/// Settings to change; `None` leaves one as it is.
#[derive(Clone, Debug, Default)]
pub struct ValChange {
    pub privacy: Option<Privacy>,
    pub description: Option<String>,
    pub scopes: Option<Scopes>,
    /// `Some(None)` allows any public host again.
    pub fetch_allowlist: Option<Option<Vec<String>>>,
    pub reuse: Option<u32>,
}

/// Why a write was not made.
#[derive(Clone, Debug)]
pub enum Refusal {
    /// The val holds this scope, which the writer may not touch.
    Holds(Scope),
    /// The owner's storage has no room: what is stored now.
    Full(Stored),
}

/// Decides a change from the val as it is when the change is written (in
/// the same transaction), or refuses it.
pub type Edit = Box<dyn FnOnce(&ValRow) -> Result<ValChange, Refusal> + Send + Sync>;

/// A version to add: the component's digest, size and kind, the libraries
/// it imports, and what must hold as it is stored.
pub struct NewVersion {
    pub val_id: String,
    pub owner_id: String,
    pub sha256: String,
    pub size: i64,
    pub kind: ValKind,
    pub libraries: Vec<LibraryRef>,
    /// The room the component must find in the owner's quota.
    pub room: Room,
    /// A change to the val's settings made with the version (scopes its
    /// component declares), and the guard on who may deploy it.
    pub edit: Option<Edit>,
}

#[async_trait]
pub trait Vals: Send + Sync {
    async fn by_id(&self, id: &str) -> StoreResult<Option<ValRow>>;
    async fn by_name(&self, owner_name: &str, name: &str) -> StoreResult<Option<ValRow>>;
    /// Vals in listings: `viewer`'s own and everyone's public ones, of
    /// `only_owner` if given, oldest first.
    async fn list(
        &self,
        viewer: Option<&str>,
        only_owner: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<ValRow>>;
    /// `Conflict` if the owner has a val of that name.
    async fn create(&self, val: NewVal) -> StoreResult<ValRow>;
    /// Change val `id` as `edit` decides from the val as it is; `None` if
    /// there is no such val.
    async fn edit(&self, id: &str, edit: Edit) -> StoreResult<Option<Result<ValRow, Refusal>>>;
    /// Delete a val, its versions, env vars and logs.
    async fn delete(&self, id: &str) -> StoreResult<()>;
    /// Add the next version (numbered from 0) if it fits and `edit` allows
    /// it; the version, and the val as it is after.
    async fn add_version(
        &self,
        version: NewVersion,
    ) -> StoreResult<Option<Result<(VersionRow, ValRow), Refusal>>>;
    /// All versions of a val, oldest first.
    async fn versions(&self, val_id: &str) -> StoreResult<Vec<VersionRow>>;
    async fn version(&self, val_id: &str, version: i64) -> StoreResult<Option<VersionRow>>;
    /// Whether a version of any of `owner_id`'s vals has this digest.
    async fn owner_has_build(&self, owner_id: &str, sha256: &str) -> StoreResult<bool>;
}

/// Set the val's settings to `change`, whatever they are now.
pub fn set(change: ValChange) -> Edit {
    Box::new(move |_| Ok(change))
}

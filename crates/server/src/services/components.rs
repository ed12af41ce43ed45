//! Uploaded components in the object store that nodes share, so that any
//! node can run a val deployed through another: a deploy stores the
//! upload there before it is acknowledged, and a node that lacks one
//! fetches it on its first call (the runtime's `Sources`).

use std::sync::Arc;

use bytes::Bytes;

use super::error::{Kind, ServiceError, ServiceResult};
use valbox_objects::{Condition, ObjectKey, Objects};
use valbox_runtime::{Fetched, Sources};

/// The shared store of uploads, by content hash.
pub struct SharedComponents(pub Arc<dyn Objects>);

impl Sources for SharedComponents {
    fn fetch<'a>(&'a self, sha256: &'a str) -> Fetched<'a> {
        Box::pin(async move {
            let got = self.0.get(&ObjectKey::component(sha256)).await;
            got.map(|o| o.map(|o| o.bytes)).map_err(|e| e.to_string())
        })
    }
}

/// Store the upload `sha256` where every node finds it. Uploads are
/// named by their hash, so one already there is the same bytes.
pub async fn share(
    objects: Option<&Arc<dyn Objects>>,
    sha256: &str,
    bytes: &[u8],
) -> ServiceResult<()> {
    let Some(objects) = objects else {
        return Ok(());
    };
    let key = ObjectKey::component(sha256);
    let unavailable = |e: valbox_objects::Unavailable| {
        ServiceError::new(
            Kind::Busy,
            "object_store_unavailable",
            format!("the component could not be stored ({e}); deploy again shortly"),
        )
    };
    if objects.head(&key).await.map_err(unavailable)?.is_some() {
        return Ok(());
    }
    let staged = objects
        .stage(&key, Bytes::copy_from_slice(bytes))
        .await
        .map_err(unavailable)?;
    // A conflict is another node storing the same bytes first.
    staged
        .publish(Condition::IfAbsent)
        .await
        .map_err(unavailable)?;
    Ok(())
}

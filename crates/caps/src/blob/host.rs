//! The `blob` WIT import, on the blob service.

use super::{Blob, BlobError, Condition};
use crate::Ctx;
use valbox_runtime::bindings::blob::{BlobEntry, Host, SetOutcome, Versioned};
use valbox_runtime::bindings::types::Error;

impl From<BlobError> for Error {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Denied(d) => Error::Denied(d.message),
            BlobError::InvalidKey(_) => Error::Invalid(e.to_string()),
            BlobError::TooLarge(_) | BlobError::Quota(_) | BlobError::Storage(_) => {
                Error::Limit(e.to_string())
            }
            // Only `set-if` meets a conflict, and answers it as an outcome.
            BlobError::Conflict(_) => Error::Invalid(e.to_string()),
            BlobError::Unavailable(_) => Error::Unavailable(e.to_string()),
            BlobError::Internal(m) => {
                tracing::error!("blob storage: {m}");
                Error::Internal("blob storage failed; retry".into())
            }
        }
    }
}

impl Host for Ctx<'_, Blob> {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.cap.get(self.grant, key).await?.map(|(value, _)| value))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.cap
            .set(self.grant, key, value, Condition::Always)
            .await?;
        Ok(())
    }

    async fn get_versioned(&mut self, key: String) -> Result<Option<Versioned>, Error> {
        let found = self.cap.get(self.grant, key).await?;
        Ok(found.map(|(value, version)| Versioned { value, version }))
    }

    async fn set_if(
        &mut self,
        key: String,
        value: Vec<u8>,
        expected: Option<String>,
    ) -> Result<SetOutcome, Error> {
        let condition = match expected {
            Some(version) => Condition::IfMatch(version),
            None => Condition::IfAbsent,
        };
        match self.cap.set(self.grant, key, value, condition).await {
            Ok(version) => Ok(SetOutcome::Written(version)),
            Err(BlobError::Conflict(current)) => Ok(SetOutcome::Conflict(current)),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&mut self, prefix: String) -> Result<Vec<BlobEntry>, Error> {
        let entries = self.cap.list(self.grant, prefix).await?;
        Ok(entries
            .into_iter()
            .map(|e| BlobEntry {
                key: e.key,
                size: e.size,
                last_modified: e.last_modified_ms.max(0) as u64,
            })
            .collect())
    }

    async fn delete(&mut self, key: String) -> Result<(), Error> {
        Ok(self.cap.delete(self.grant, key).await?)
    }
}

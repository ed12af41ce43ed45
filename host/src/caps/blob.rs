//! Blob storage. Not built yet: every import answers `unavailable`.

use super::{CallContext, unavailable};
use crate::runtime::bindings::blob::{BlobEntry, Host};
use crate::runtime::bindings::types::Error;

impl Host for CallContext {
    async fn get(&mut self, _key: String) -> Result<Option<Vec<u8>>, Error> {
        self.check("blob:read")?;
        Err(unavailable("blob"))
    }

    async fn set(&mut self, _key: String, _value: Vec<u8>) -> Result<(), Error> {
        self.check("blob:write")?;
        Err(unavailable("blob"))
    }

    async fn list(&mut self, _prefix: String) -> Result<Vec<BlobEntry>, Error> {
        self.check("blob:read")?;
        Err(unavailable("blob"))
    }

    async fn delete(&mut self, _key: String) -> Result<(), Error> {
        self.check("blob:write")?;
        Err(unavailable("blob"))
    }
}

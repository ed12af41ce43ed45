//! Email to the val's owner. Not built yet: `send` answers `unavailable`.

use super::{CallContext, unavailable};
use crate::runtime::bindings::email::{Host, Message};
use crate::runtime::bindings::types::Error;

impl Host for CallContext {
    async fn send(&mut self, _message: Message) -> Result<String, Error> {
        self.check("email:write")?;
        Err(unavailable("email"))
    }
}

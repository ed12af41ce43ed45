//! Outbound HTTP. Not built yet: `fetch` answers `unavailable`.

use super::{CallContext, unavailable};
use crate::runtime::bindings::fetch::{Host, Request, Response};
use crate::runtime::bindings::types::Error;

impl Host for CallContext {
    async fn fetch(&mut self, _request: Request) -> Result<Response, Error> {
        self.check("fetch")?;
        Err(unavailable("fetch"))
    }
}

//! The `fetch` WIT import, on the fetch service.

use super::Fetch;
use crate::Ctx;
use valbox_runtime::bindings::fetch::{Host, Request, Response};
use valbox_runtime::bindings::types::Error;

impl Host for Ctx<'_, Fetch> {
    async fn fetch(&mut self, request: Request) -> Result<Response, Error> {
        let deadline = self.grant.deadline();
        self.cap
            .fetch(self.grant, self.call, request, deadline)
            .await
    }
}

//! The `vals` WIT import, on the vals service.

use super::Vals;
use crate::Ctx;
use valbox_runtime::bindings::http_types::{Request, Response};
use valbox_runtime::bindings::types::Error;
use valbox_runtime::bindings::vals::Host;
use valbox_runtime::{Input, Output};

impl Host for Ctx<'_, Vals> {
    async fn run(&mut self, name: String, args: String) -> Result<String, Error> {
        match self
            .cap
            .call(self.grant, &name, Input::Script(args))
            .await?
        {
            Output::Script(Ok(json)) => Ok(json),
            Output::Script(Err(message)) => Err(Error::Invalid(format!(
                "`{name}` returned an error: {message}"
            ))),
            Output::Http(_) => Err(Error::Invalid(format!(
                "`{name}` is an HTTP val: use `call-http`"
            ))),
            Output::Cron(_) | Output::Email(_) => Err(not_called(&name)),
        }
    }

    async fn call_http(&mut self, name: String, request: Request) -> Result<Response, Error> {
        match self
            .cap
            .call(self.grant, &name, Input::Http(request))
            .await?
        {
            Output::Http(response) => Ok(response),
            Output::Script(_) => Err(Error::Invalid(format!(
                "`{name}` is a script val: use `run`"
            ))),
            Output::Cron(_) | Output::Email(_) => Err(not_called(&name)),
        }
    }
}

/// A cron or email val answered (never, in practice: the kind is checked
/// before the call).
fn not_called(name: &str) -> Error {
    Error::Invalid(format!(
        "`{name}` is a cron or email val: it runs on its schedule or when mail arrives, \
         not when called"
    ))
}

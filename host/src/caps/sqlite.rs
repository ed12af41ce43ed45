//! SQLite per owner. Not built yet: every import answers `unavailable`.

use super::{CallContext, unavailable};
use crate::runtime::bindings::sqlite::{BatchMode, Host, ResultSet, Statement};
use crate::runtime::bindings::types::Error;

impl Host for CallContext {
    async fn execute(&mut self, _statement: Statement) -> Result<ResultSet, Error> {
        self.check("sqlite:read")?;
        Err(unavailable("sqlite"))
    }

    async fn batch(
        &mut self,
        _statements: Vec<Statement>,
        _mode: BatchMode,
    ) -> Result<Vec<ResultSet>, Error> {
        self.check("sqlite:read")?;
        Err(unavailable("sqlite"))
    }
}

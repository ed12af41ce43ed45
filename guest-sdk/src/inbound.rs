//! The mail an email val receives.

pub use crate::__private::email::exports::valbox::platform::email_handler::{
    ReceivedAttachment, ReceivedEmail,
};

impl ReceivedEmail {
    /// The first value of the header `name` (any case), if the message
    /// has it.
    ///
    /// ```no_run
    /// fn receive(mail: valbox_sdk::ReceivedEmail) -> Result<(), String> {
    ///     if mail.header("list-id").is_some() {
    ///         return Ok(()); // mailing-list traffic: ignored
    ///     }
    ///     println!("{} wrote: {:?}", mail.from.email, mail.subject);
    ///     Ok(())
    /// }
    /// # valbox_sdk::email_val!(receive);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

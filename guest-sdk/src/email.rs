//! Email to the val's owner (scope `email:write`). Mail goes into a durable
//! outbox and is delivered by the server; other recipients are refused.

use crate::Error;
use crate::bindings::valbox::platform::email as raw;

/// A full message, an address and an attachment, for [`send`].
pub use raw::{Address, Attachment, Message};

/// Queue `message` for the owner; returns its id.
///
/// ```no_run
/// use valbox_sdk::email::{self, Message};
/// email::send(&Message {
///     subject: Some("Build finished".into()),
///     html: Some("<b>All green</b>".into()),
///     ..email::message()
/// })?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn send(message: &Message) -> Result<String, Error> {
    raw::send(message).map_err(Error::from)
}

/// Mail the owner a plain-text note; returns its id.
///
/// ```no_run
/// valbox_sdk::email::notify("Disk almost full", "87% used")?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn notify(subject: &str, text: &str) -> Result<String, Error> {
    send(&Message {
        subject: Some(subject.into()),
        text: Some(text.into()),
        ..message()
    })
}

/// An empty message (to the owner), to fill in with struct update syntax.
///
/// ```
/// let m = valbox_sdk::email::message();
/// assert!(m.to.is_empty() && m.subject.is_none());
/// ```
pub fn message() -> Message {
    Message {
        to: Vec::new(),
        cc: Vec::new(),
        bcc: Vec::new(),
        from: None,
        reply_to: Vec::new(),
        subject: None,
        text: None,
        html: None,
        headers: Vec::new(),
        attachments: Vec::new(),
    }
}

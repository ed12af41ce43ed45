//! `forward`: an email val that forwards what it receives to its owner
//! (scope `email:write`), subject `Fwd: ...`, who sent it first in the
//! text. Were the owner's own address this val's, the forward would come
//! back to it: the platform refuses it then (a mail loop), so it runs once.

use valbox_sdk::email::{self, Message};
use valbox_sdk::{Error, ReceivedEmail};

fn forward(mail: ReceivedEmail) -> Result<(), Error> {
    let subject = mail.subject.as_deref().unwrap_or("(no subject)");
    let text = format!(
        "From {} <{}>:\n\n{}",
        mail.from.name.as_deref().unwrap_or(""),
        mail.from.email,
        mail.text.as_deref().unwrap_or("")
    );
    let id = email::send(&Message {
        subject: Some(format!("Fwd: {subject}")),
        text: Some(text),
        ..email::message()
    })?;
    println!("forwarded as {id}");
    Ok(())
}

valbox_sdk::email_val!(forward);
valbox_sdk::scopes!("email:write");

//! `notify`: emails its owner (scope `email:write`). `POST /` with a text
//! body sends it with the subject from `?subject=`; `POST /?to=ADDRESS`
//! tries another recipient, which the platform refuses.

use valbox_sdk::email::{self, Address, Message};
use valbox_sdk::{Request, Response};

fn notify(req: Request) -> Response {
    let subject = req
        .query_param("subject")
        .unwrap_or_else(|| "A note from your val".into());
    let to = req
        .query_param("to")
        .map(|email| vec![Address { email, name: None }])
        .unwrap_or_default();
    let message = Message {
        to,
        subject: Some(subject),
        text: Some(req.text().unwrap_or_default().to_string()),
        ..email::message()
    };
    match email::send(&message) {
        Ok(id) => Response::text(format!("queued {id}")),
        Err(e) => Response::text(e.to_string()).with_status(400),
    }
}

valbox_sdk::http_val!(notify);
valbox_sdk::scopes!("email:write");

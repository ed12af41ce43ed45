//! A received message as an email val sees it: MIME parsed by
//! mail-parser, never by hand. A message it cannot parse (no header at
//! all) is still delivered, raw, with `parsed: false`.

use mail_parser::{Address, MessageParser, MimeHeaders};
use valbox_runtime::bindings::email::Address as WitAddress;
use valbox_runtime::bindings::{ReceivedAttachment, ReceivedEmail};

/// The header that lists the vals a message went through, so that a val
/// whose mail comes back to it is caught (see [`loop_trace`]).
pub const LOOP_HEADER: &str = "X-Valbox-Loop";

/// `raw`, received for `envelope_to` from `envelope_from`, as the val's
/// `receive` gets it.
pub fn received(raw: &[u8], envelope_from: &str, envelope_to: &str) -> ReceivedEmail {
    let unparsed = || ReceivedEmail {
        from: address(envelope_from, None),
        to: vec![address(envelope_to, None)],
        cc: Vec::new(),
        subject: None,
        text: None,
        html: None,
        headers: Vec::new(),
        attachments: Vec::new(),
        message_id: None,
        envelope_from: envelope_from.to_string(),
        envelope_to: envelope_to.to_string(),
        raw_size: raw.len() as u64,
        parsed: false,
        raw: Some(raw.to_vec()),
    };
    let Some(message) = MessageParser::default().parse(raw) else {
        return unparsed();
    };
    if message.headers().is_empty() {
        return unparsed();
    }
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| Some(address(a.address()?, a.name())))
        .unwrap_or_else(|| address(envelope_from, None));
    let attachments = message
        .attachments()
        .map(|part| ReceivedAttachment {
            filename: part.attachment_name().map(String::from),
            content_type: part.content_type().map_or_else(
                || "application/octet-stream".to_string(),
                |t| match t.subtype() {
                    Some(sub) => format!("{}/{sub}", t.ctype()),
                    None => t.ctype().to_string(),
                },
            ),
            content: part.contents().to_vec(),
        })
        .collect();
    ReceivedEmail {
        from,
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        subject: message.subject().map(String::from),
        text: message.body_text(0).map(|t| t.into_owned()),
        html: message.body_html(0).map(|t| t.into_owned()),
        headers: headers(&message),
        attachments,
        message_id: message.message_id().map(String::from),
        envelope_from: envelope_from.to_string(),
        envelope_to: envelope_to.to_string(),
        raw_size: raw.len() as u64,
        parsed: true,
        raw: None,
    }
}

/// Every header of the message, in order, each value unfolded and
/// trimmed (encoded words are left as they are).
fn headers(message: &mail_parser::Message) -> Vec<(String, String)> {
    message
        .headers_raw()
        .map(|(name, value)| {
            let unfolded: String = value
                .split(['\r', '\n'])
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            (name.to_string(), unfolded)
        })
        .collect()
}

fn addresses(list: Option<&Address>) -> Vec<WitAddress> {
    list.into_iter()
        .flat_map(|a| a.iter())
        .filter_map(|a| Some(address(a.address()?, a.name())))
        .collect()
}

fn address(email: &str, name: Option<&str>) -> WitAddress {
    WitAddress {
        email: email.to_string(),
        name: name.map(String::from),
    }
}

/// The vals a parsed message's `headers` say it went through.
pub fn trace_of(headers: &[(String, String)]) -> Vec<String> {
    trace(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
}

/// Vals one trace keeps: more is a loop anyway (the SMTP server refuses
/// past 8), and the trace goes into mail the val sends.
const MAX_TRACE: usize = 16;

/// The val ids in the loop headers among `headers`: only what looks like
/// an id (a sender writes these headers; anything else is dropped).
fn trace<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let id_like = |id: &&str| {
        (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    headers
        .filter(|(name, _)| name.eq_ignore_ascii_case(LOOP_HEADER))
        .flat_map(|(_, value)| value.split(',').map(str::trim))
        .filter(id_like)
        .take(MAX_TRACE)
        .map(String::from)
        .collect()
}

/// The vals the message `raw` says it went through, from its
/// [`LOOP_HEADER`]s (each a comma-separated list of val ids). Only the
/// header block is read.
pub fn loop_trace(raw: &[u8]) -> Vec<String> {
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return Vec::new();
    };
    trace(message.headers_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_message_with_an_attachment() {
        let raw = b"From: Ann <ann@example.com>\r\nTo: bob.inbox@mail.test, c@example.com\r\n\
            Cc: d@example.com\r\nSubject: =?utf-8?q?h=C3=A9llo?=\r\nMessage-ID: <1@example.com>\r\n\
            X-Long: one\r\n two\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
            hi there\r\n--b\r\nContent-Type: application/pdf\r\n\
            Content-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
            JVBERg==\r\n--b--\r\n";
        let mail = received(raw, "bounce@example.com", "bob.inbox@mail.test");
        assert!(mail.parsed && mail.raw.is_none());
        assert_eq!(mail.from.email, "ann@example.com");
        assert_eq!(mail.from.name.as_deref(), Some("Ann"));
        assert_eq!(mail.to.len(), 2);
        assert_eq!(mail.cc[0].email, "d@example.com");
        assert_eq!(mail.subject.as_deref(), Some("héllo"));
        assert_eq!(mail.text.as_deref().map(str::trim), Some("hi there"));
        assert_eq!(mail.message_id.as_deref(), Some("1@example.com"));
        assert_eq!(mail.attachments.len(), 1);
        let pdf = &mail.attachments[0];
        assert_eq!(
            (pdf.filename.as_deref(), pdf.content_type.as_str()),
            (Some("a.pdf"), "application/pdf")
        );
        assert_eq!(pdf.content, b"%PDF");
        assert!(mail.headers.contains(&("X-Long".into(), "one two".into())));
        assert_eq!(mail.raw_size, raw.len() as u64);
    }

    #[test]
    fn what_cannot_be_parsed_is_delivered_raw() {
        for raw in [&b""[..], b"\r\n\r\njust a body", b"\xff\xfe\x00"] {
            let mail = received(raw, "x@example.com", "bob.inbox@mail.test");
            if !mail.parsed {
                assert_eq!(mail.raw.as_deref(), Some(raw));
                assert_eq!(mail.from.email, "x@example.com");
            }
        }
        let mail = received(b"", "x@example.com", "bob.inbox@mail.test");
        assert!(!mail.parsed);
    }

    #[test]
    fn the_loop_trace_is_read_from_every_loop_header() {
        let raw = b"X-Valbox-Loop: a, b\r\nx-valbox-loop: c\r\nSubject: s\r\n\r\nbody\r\n";
        assert_eq!(loop_trace(raw), ["a", "b", "c"]);
        assert!(loop_trace(b"Subject: s\r\n\r\nX-Valbox-Loop: a\r\n").is_empty());
        // What is no id is dropped; a long trace is cut.
        let long = format!(
            "X-Valbox-Loop: {}, <x>, {}\r\n\r\n",
            "A".repeat(100),
            "b,".repeat(40)
        );
        assert_eq!(loop_trace(long.as_bytes()), vec!["b"; MAX_TRACE]);
    }
}

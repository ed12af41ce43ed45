//! One SMTP conversation (RFC 5321), from the greeting to QUIT: EHLO,
//! STARTTLS, MAIL, RCPT, DATA, RSET, NOOP, with every read bounded in size
//! and time. A message is acknowledged once the mail queue holds it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use valbox_model::{Privacy, ValKind, now_ms};
use valbox_store::{IncomingMail, ValRow};

use super::{Refusal, Shared, Slot};

/// The longest command line (RFC 5321 allows 512; extensions add more).
const MAX_COMMAND_LINE: usize = 2048;
/// How long the server waits for a command or a line of a message.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a message's data may take to arrive (a slow drip holds a
/// turn to receive).
const DATA_TIME: Duration = Duration::from_secs(120);
/// How long one connection may last in all.
const SESSION_TIME: Duration = Duration::from_secs(10 * 60);
/// Bad commands before the server hangs up.
const MAX_ERRORS: u32 = 10;
/// Recipients of one message.
const MAX_RECIPIENTS: usize = 50;
/// Vals one message may have passed through (its loop header) before it
/// is taken for a loop, even if none is the recipient.
const MAX_HOPS: usize = 8;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Conn = BufReader<Box<dyn Io>>;

/// Serve one connection, or turn it away with 421.
pub(super) async fn run(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Result<Slot, Refusal>,
) {
    let mut conn: Conn = BufReader::new(Box::new(stream));
    let _slot = match slot {
        Ok(slot) => slot,
        Err(refusal) => {
            let why = match refusal {
                Refusal::TooManyConnections => "too many connections; try again later",
                Refusal::TooManyFromClient => "too many connections from your address",
            };
            let _ = reply(&mut conn, &format!("421 4.7.0 {why}")).await;
            return;
        }
    };
    let mut session = Session {
        shared: shared.clone(),
        peer,
        helo: None,
        tls: false,
        envelope: None,
        errors: 0,
    };
    let ended = tokio::time::timeout(SESSION_TIME, session.converse(&mut conn)).await;
    if ended.is_err() {
        let last_words = reply(&mut conn, "421 4.4.2 this connection has lasted too long");
        let _ = tokio::time::timeout(Duration::from_secs(5), last_words).await;
    }
}

struct Session {
    shared: Arc<Shared>,
    peer: SocketAddr,
    helo: Option<String>,
    tls: bool,
    envelope: Option<Envelope>,
    errors: u32,
}

/// A message being sent: its sender, then its recipients.
struct Envelope {
    from: String,
    to: Vec<Recipient>,
}

struct Recipient {
    address: String,
    val: Arc<ValRow>,
}

/// What a command asks of the conversation after its reply.
enum Next {
    Go,
    Close,
    StartTls,
}

impl Session {
    async fn converse(&mut self, conn: &mut Conn) {
        let domain = self.shared.config.domain.clone();
        if reply(conn, &format!("220 {domain} ESMTP Valbox"))
            .await
            .is_err()
        {
            return;
        }
        let mut line = Vec::new();
        loop {
            line.clear();
            let whole = match read_line(conn, &mut line, MAX_COMMAND_LINE).await {
                Ok(Some(read)) => read.whole,
                Ok(None) => return,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    let _ = reply(conn, "421 4.4.2 timed out waiting for a command").await;
                    return;
                }
                Err(_) => return,
            };
            let (answer, next) = if whole {
                let text = String::from_utf8_lossy(&line);
                self.command(text.trim_end_matches(['\r', '\n']), conn)
                    .await
            } else {
                (self.error("500 5.5.2 line too long"), Next::Go)
            };
            let next = if self.errors >= MAX_ERRORS {
                let _ = reply(conn, &answer).await;
                let _ = reply(conn, "421 4.7.0 too many errors; closing").await;
                return;
            } else {
                if reply(conn, &answer).await.is_err() {
                    return;
                }
                next
            };
            match next {
                Next::Go => {}
                Next::Close => return,
                Next::StartTls => {
                    if !self.start_tls(conn).await {
                        return;
                    }
                }
            }
        }
    }

    /// Count a bad command; its reply.
    fn error(&mut self, answer: &str) -> String {
        self.errors += 1;
        answer.to_string()
    }

    async fn command(&mut self, line: &str, conn: &mut Conn) -> (String, Next) {
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb, arg.trim()),
            None => (line, ""),
        };
        let domain = &self.shared.config.domain;
        let answer = match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if arg.is_empty() => {
                self.error("501 5.5.4 say who you are: EHLO your.host.name")
            }
            "EHLO" => {
                self.helo = Some(printable(arg));
                self.envelope = None;
                let mut lines = vec![
                    format!("250-{domain} greets {}", printable(arg)),
                    format!("250-SIZE {}", self.shared.config.max_message_bytes),
                    "250-8BITMIME".into(),
                    "250-PIPELINING".into(),
                    "250-SMTPUTF8".into(),
                ];
                if self.shared.tls.is_some() && !self.tls {
                    lines.push("250-STARTTLS".into());
                }
                lines.push("250 ENHANCEDSTATUSCODES".into());
                lines.join("\r\n")
            }
            "HELO" => {
                self.helo = Some(printable(arg));
                self.envelope = None;
                format!("250 {domain}")
            }
            "STARTTLS" if self.shared.tls.is_none() || self.tls => {
                self.error("502 5.5.1 STARTTLS is not offered here")
            }
            "STARTTLS" if !arg.is_empty() => self.error("501 5.5.4 STARTTLS takes no argument"),
            "STARTTLS" => {
                // Anything the client sent after STARTTLS before the
                // handshake would be taken as said over TLS: refused.
                if !conn.buffer().is_empty() {
                    return (
                        "503 5.5.1 nothing may follow STARTTLS before the handshake".into(),
                        Next::Close,
                    );
                }
                return ("220 2.0.0 ready to start TLS".into(), Next::StartTls);
            }
            "MAIL" => self.mail(arg).await,
            "RCPT" => self.rcpt(arg).await,
            "DATA" if !arg.is_empty() => self.error("501 5.5.4 DATA takes no argument"),
            "DATA" => return self.data(conn).await,
            "RSET" => {
                self.envelope = None;
                "250 2.0.0 reset".into()
            }
            "NOOP" => "250 2.0.0 OK".into(),
            "QUIT" => return (format!("221 2.0.0 {domain} closing"), Next::Close),
            "VRFY" => "252 2.5.0 cannot verify; send the mail and see".into(),
            "HELP" => "214 2.0.0 EHLO, STARTTLS, MAIL, RCPT, DATA, RSET, NOOP, QUIT".into(),
            "BDAT" | "AUTH" | "ETRN" | "EXPN" | "TURN" => {
                self.error("502 5.5.1 command not implemented")
            }
            _ => self.error("500 5.5.2 command not recognized"),
        };
        (answer, Next::Go)
    }

    async fn mail(&mut self, arg: &str) -> String {
        if self.helo.is_none() {
            return self.error("503 5.5.1 say EHLO first");
        }
        if self.envelope.is_some() {
            return self.error("503 5.5.1 a message is already begun: RSET first");
        }
        let Some(rest) = strip_prefix_ci(arg, "FROM:") else {
            return self.error("501 5.5.4 syntax: MAIL FROM:<address>");
        };
        let Some((from, params)) = path(rest) else {
            return self.error("501 5.1.7 syntax: MAIL FROM:<address>");
        };
        let max = self.shared.config.max_message_bytes;
        for param in params.split_whitespace() {
            if let Some(size) = strip_prefix_ci(param, "SIZE=") {
                let over = match size.parse::<u64>() {
                    Ok(n) => n > max as u64,
                    // Digits past u64: larger than any limit.
                    Err(_) if !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) => true,
                    Err(_) => return self.error("501 5.5.4 SIZE must be a number"),
                };
                if over {
                    return too_big_reply(max);
                }
            }
        }
        match self.shared.queue_has_room().await {
            Ok(true) => {}
            Ok(false) => return "452 4.3.1 the server holds too much mail; try again later".into(),
            Err(e) => {
                tracing::warn!("smtp: counting the queue: {e}");
                return "451 4.3.0 the server cannot take mail now; try again later".into();
            }
        }
        if !self.shared.take_message(self.peer.ip()) {
            return format!(
                "451 4.7.1 more than {} messages a minute from your address; try again later",
                self.shared.config.messages_per_client_minute
            );
        }
        self.envelope = Some(Envelope {
            from: from.to_string(),
            to: Vec::new(),
        });
        "250 2.1.0 sender OK".into()
    }

    async fn rcpt(&mut self, arg: &str) -> String {
        let Some(envelope) = &self.envelope else {
            return self.error("503 5.5.1 say MAIL FROM first");
        };
        if envelope.to.len() >= MAX_RECIPIENTS {
            return format!("452 4.5.3 at most {MAX_RECIPIENTS} recipients per message");
        }
        let Some(rest) = strip_prefix_ci(arg, "TO:") else {
            return self.error("501 5.5.4 syntax: RCPT TO:<address>");
        };
        let Some((address, _params)) = path(rest) else {
            return self.error("501 5.1.3 syntax: RCPT TO:<address>");
        };
        let domain = &self.shared.config.domain;
        let Some((user, name)) = val_address(address, domain) else {
            return self.error(&format!(
                "550 5.7.1 this server takes mail only for email vals, at \
                 user.val@{domain}"
            ));
        };
        // Named again: nothing to look up (and a flood of repeats is a
        // client's mistake, not work for the store).
        let again = |r: &Recipient| {
            val_address(&r.address, domain)
                .is_some_and(|(u, n)| u == user && n.eq_ignore_ascii_case(name))
        };
        if envelope.to.iter().any(again) {
            self.errors += 1;
            return "250 2.1.5 recipient OK (already named)".into();
        }
        let val = match self.shared.app.val_by_name(&user, name).await {
            Ok(Some(val)) => val,
            Ok(None) => return self.error("550 5.1.1 no email val at this address"),
            Err(e) => {
                tracing::warn!("smtp: looking up {address}: {e}");
                return "451 4.3.0 the server cannot look up recipients now; try again later"
                    .into();
            }
        };
        // A private val is its owner's alone, and the sender proves
        // nothing: it has no address for anyone.
        let is_email = val
            .latest
            .as_ref()
            .is_some_and(|v| v.kind == ValKind::Email);
        if val.privacy == Privacy::Private || !is_email {
            return self.error("550 5.1.1 no email val at this address");
        }
        let queued = match self.shared.app.store.mail_queue.queued_for(&val.id).await {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!("smtp: the queue of {address}: {e}");
                return "451 4.3.0 the server cannot take mail now; try again later".into();
            }
        };
        if queued.bytes >= self.shared.config.max_queued_bytes_per_val {
            return "452 4.2.2 this val's mailbox is full; try again later".into();
        }
        let address = address.to_string();
        // One copy per val, however many of its addresses are named.
        if let Some(envelope) = &mut self.envelope
            && !envelope.to.iter().any(|r| r.val.id == val.id)
        {
            envelope.to.push(Recipient { address, val });
        }
        "250 2.1.5 recipient OK".into()
    }

    /// DATA: read the message to its end, then queue it for each
    /// recipient.
    async fn data(&mut self, conn: &mut Conn) -> (String, Next) {
        let Some(envelope) = self.envelope.take_if(|e| !e.to.is_empty()) else {
            let answer = match self.envelope {
                Some(_) => self.error("554 5.5.1 no valid recipients"),
                None => self.error("503 5.5.1 say MAIL FROM and RCPT TO first"),
            };
            return (answer, Next::Go);
        };
        let Ok(_receiving) = self.shared.receiving.clone().try_acquire_owned() else {
            self.envelope = Some(envelope);
            return (
                "451 4.3.2 the server is busy receiving other mail; try again shortly".into(),
                Next::Go,
            );
        };
        if reply(conn, "354 send the message; end with <CRLF>.<CRLF>")
            .await
            .is_err()
        {
            return (String::new(), Next::Close);
        }
        let max = self.shared.config.max_message_bytes;
        // Kept as the sender sent it (no trace header of ours on top), so
        // that what the val is given as raw is exactly that.
        let mut message = Vec::new();
        let mut too_big = false;
        let mut line = Vec::new();
        // The end is `.` on a line of its own after a CRLF: a bare LF
        // before it is data (no SMTP smuggling of a second message).
        let mut after_crlf = true;
        let arrive_by = tokio::time::Instant::now() + DATA_TIME;
        loop {
            line.clear();
            // One byte past what fits, so a line too long shows as one.
            let room = max.saturating_add(3).saturating_sub(message.len()).max(3);
            let read = tokio::time::timeout_at(arrive_by, read_line(conn, &mut line, room))
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
            let read = match read {
                Ok(Some(read)) => read,
                Ok(None) => return (String::new(), Next::Close),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return (
                        "421 4.4.2 timed out waiting for the message".into(),
                        Next::Close,
                    );
                }
                Err(_) => return (String::new(), Next::Close),
            };
            too_big |= !read.whole;
            if line == b".\r\n" && after_crlf {
                break;
            }
            after_crlf = read.crlf;
            if too_big {
                continue;
            }
            let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
            message.extend_from_slice(unstuffed);
            too_big = message.len() > max;
        }
        if too_big {
            self.shared.app.metrics.mail_received("552");
            return (too_big_reply(max), Next::Go);
        }
        let answer = self.queue(envelope, message).await;
        self.shared.app.metrics.mail_received(&answer);
        (answer, Next::Go)
    }

    async fn queue(&self, envelope: Envelope, message: Vec<u8>) -> String {
        // Parsing headers of up to the size limit: off the async threads.
        let (trace, message) =
            tokio::task::spawn_blocking(move || (super::loop_trace(&message), message))
                .await
                .expect("reading a loop header does not panic");
        if trace.len() >= MAX_HOPS || envelope.to.iter().any(|r| trace.contains(&r.val.id)) {
            return "554 5.4.6 mail loop: this message came from the val it is sent to".into();
        }
        let app = &self.shared.app;
        let received_ms = now_ms();
        let mut ids = Vec::new();
        for recipient in &envelope.to {
            let mail = IncomingMail {
                val_id: recipient.val.id.clone(),
                owner_id: recipient.val.owner_id.clone(),
                envelope_from: envelope.from.clone(),
                envelope_to: recipient.address.clone(),
                raw: message.clone(),
                received_ms,
            };
            let limit = self.shared.config.max_queued_bytes_per_val;
            match app.store.mail_queue.enqueue(mail, limit).await {
                Ok(Some(id)) => ids.push(id),
                // A sender retries the whole message: recipients queued
                // before this one may get it twice, never not at all.
                Ok(None) => return "452 4.2.2 a val's mailbox is full; try again later".into(),
                Err(e) => {
                    tracing::warn!("smtp: queueing mail: {e}");
                    return "451 4.3.0 the message could not be stored; try again later".into();
                }
            }
        }
        app.mail_arrived.notify_one();
        format!("250 2.0.0 queued as {}", ids.join(","))
    }

    /// The TLS handshake after `220`; whether the conversation goes on.
    async fn start_tls(&mut self, conn: &mut Conn) -> bool {
        let Some(acceptor) = self.shared.tls.clone() else {
            return false;
        };
        let plain = std::mem::replace(conn, BufReader::new(Box::new(tokio::io::duplex(1).0)));
        let io = plain.into_inner();
        match tokio::time::timeout(READ_TIMEOUT, acceptor.accept(io)).await {
            Ok(Ok(tls)) => {
                *conn = BufReader::new(Box::new(tls));
                // RFC 3207: the client starts over, with EHLO.
                self.tls = true;
                self.helo = None;
                self.envelope = None;
                true
            }
            _ => false,
        }
    }
}

/// `user` (lowercase) and `val` of `address` if it is `user.val@domain`,
/// or `user.val+tag@domain`.
fn val_address<'a>(address: &'a str, domain: &str) -> Option<(String, &'a str)> {
    let (local, at) = address.rsplit_once('@')?;
    if !at.trim_end_matches('.').eq_ignore_ascii_case(domain) {
        return None;
    }
    let local = local.split_once('+').map_or(local, |(l, _)| l);
    let (user, val) = local.split_once('.')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    (plain(user) && plain(val)).then(|| (user.to_ascii_lowercase(), val))
}

/// The reply to a message over `max` bytes, declared or sent.
fn too_big_reply(max: usize) -> String {
    format!("552 5.3.4 the message is larger than {max} bytes, the most accepted")
}

/// What a client said of itself, fit to echo: printable ASCII, at most
/// 64 characters.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

/// `<address>` and what follows it; `<>` is the empty address.
fn path(arg: &str) -> Option<(&str, &str)> {
    let rest = arg.trim_start().strip_prefix('<')?;
    let (address, params) = rest.split_once('>')?;
    let ok = address.len() <= 256 && !address.chars().any(|c| c.is_control() || c == '<');
    ok.then_some((address, params))
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Write `answer`, waiting at most [`READ_TIMEOUT`] for a client that
/// does not read (its connection would otherwise be held for ever).
async fn reply(conn: &mut Conn, answer: &str) -> std::io::Result<()> {
    if answer.is_empty() {
        return Ok(());
    }
    let io = conn.get_mut();
    let write = async {
        io.write_all(answer.as_bytes()).await?;
        io.write_all(b"\r\n").await?;
        io.flush().await
    };
    tokio::time::timeout(READ_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// A line as [`read_line`] read it.
struct Read {
    /// All of it was kept.
    whole: bool,
    /// It ended with CRLF (whether or not all of it was kept).
    crlf: bool,
}

/// Read one line, through its `\n`, into `line`, keeping at most `keep`
/// bytes of it; `None` at the end of the stream. Waits at most
/// [`READ_TIMEOUT`] for each chunk.
async fn read_line(
    conn: &mut Conn,
    line: &mut Vec<u8>,
    keep: usize,
) -> std::io::Result<Option<Read>> {
    let mut whole = true;
    let mut last = None;
    loop {
        let buf = match tokio::time::timeout(READ_TIMEOUT, conn.fill_buf()).await {
            Ok(read) => read?,
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
        };
        if buf.is_empty() {
            return Ok(None);
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(end) => (&buf[..=end], true),
            None => (buf, false),
        };
        let fits = keep.saturating_sub(line.len()).min(chunk.len());
        line.extend_from_slice(&chunk[..fits]);
        whole &= fits == chunk.len();
        let before_lf = match chunk.len() {
            1 => last,
            n => Some(chunk[n - 2]),
        };
        last = chunk.last().copied();
        let used = chunk.len();
        conn.consume(used);
        if done {
            let crlf = before_lf == Some(b'\r');
            return Ok(Some(Read { whole, crlf }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn val_addresses() {
        let domain = "mail.test";
        assert_eq!(
            val_address("Bob.inbox@MAIL.test", domain),
            Some(("bob".into(), "inbox"))
        );
        assert_eq!(
            val_address("bob.inbox+news@mail.test.", domain),
            Some(("bob".into(), "inbox"))
        );
        for bad in [
            "bob.inbox@other.test",
            "bobinbox@mail.test",
            ".inbox@mail.test",
            "bob.@mail.test",
            "bob.in/box@mail.test",
            "bob.a.b@mail.test",
            "bob.inbox",
        ] {
            assert_eq!(val_address(bad, domain), None, "{bad}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(path("<a@b> SIZE=10"), Some(("a@b", " SIZE=10")));
        assert_eq!(path(" <>"), Some(("", "")));
        assert_eq!(path("a@b"), None);
        assert_eq!(path("<a@b"), None);
        assert_eq!(path("<a\u{0}@b>"), None);
    }
}

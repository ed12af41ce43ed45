//! Benchmark (o): receiving mail for email vals. One client on one SMTP
//! connection sends ~2 KiB text messages, each waiting for its reply, to
//! the email val `inbox`: the messages accepted (250) per second, in
//! alternating rounds against aiosmtpd (Python, from PyPI) keeping each
//! message in a Maildir, and their ratio. Then, one message every 50 ms,
//! the delivery delay: from the client's 250 to the start of the val's
//! call that delivers the message (its log record's time), p50 and p99,
//! beside the latency of an HTTP call of `hello` on the same server made
//! between the messages, and their ratio. The delivery worker is woken as
//! a message is queued, before its 250 is written, so a call can start a
//! little before the client reads the 250: a delay can be negative. Run
//! with `scripts/bench`.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use valbox_server::config::Config;
use valbox_server::mail_in::MailConfig;
use valbox_server::server::Server;

const DOMAIN: &str = "mail.bench";
/// Rounds of each server, alternating, and how long each lasts.
const ROUNDS: usize = 3;
const ROUND_TIME: Duration = Duration::from_secs(3);
/// Messages before the rounds, to each server, not counted.
const WARMUP: usize = 100;
/// Messages whose delivery delay is measured, and their spacing.
const TIMED: usize = 200;
const SPACING: Duration = Duration::from_millis(50);
/// Bounds each wait for the deliveries to catch up.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

const BASELINE: &str = "aiosmtpd 1.x with its Mailbox handler: like us it parses each message \
and stores it (a Maildir file) before it answers 250; its Sink handler would store nothing. \
Maildir does not fsync, our mail queue commits with synchronous=FULL";

fn main() {
    common::run_on_tokio(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let token = valbox::cli::create_user(dir.path(), "bench", "bench@example.com")
        .await
        .unwrap();
    let mut mail = MailConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
    // One client sends thousands a minute here.
    mail.messages_per_client_minute = u32::MAX;
    let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.mail = Some(mail);
    let server = Server::start(config).await.unwrap();
    let base = format!("http://{}", server.addr);
    let ours = server.mail_addr.unwrap();
    let inbox = common::val_wasm("inbox");
    common::deploy(&base, &token, "load", inbox.clone()).await;
    let timed_id = common::deploy(&base, &token, "timed", inbox).await;
    common::deploy(&base, &token, "hello", common::hello_wasm()).await;

    let maildir = dir.path().join("aiosmtpd-maildir");
    let theirs = Aiosmtpd::start(&maildir).await;
    println!("(o) baseline: {BASELINE}");

    // Accepted messages per second, one client, one connection.
    let load_to = format!("bench.load@{DOMAIN}");
    let mut sent_to_load = 0;
    sent_to_load += send_for(ours, &load_to, "warm", Duration::MAX, WARMUP)
        .await
        .0;
    send_for(theirs.addr, &load_to, "warm", Duration::MAX, WARMUP).await;
    drained(&base, &token, sent_to_load).await;
    let (mut ours_total, mut theirs_total) = ((0, Duration::ZERO), (0, Duration::ZERO));
    for round in 1..=ROUNDS {
        let (n, took) = send_for(ours, &load_to, "load", ROUND_TIME, usize::MAX).await;
        sent_to_load += n;
        ours_total = (ours_total.0 + n, ours_total.1 + took);
        // Deliveries still running would slow the next round of theirs.
        let drain = drained(&base, &token, sent_to_load).await;
        let (m, their_took) = send_for(theirs.addr, &load_to, "load", ROUND_TIME, usize::MAX).await;
        theirs_total = (theirs_total.0 + m, theirs_total.1 + their_took);
        println!(
            "(o) round {round}: valbox {:>6.0} msgs/s ({n} in {:.1} s, all delivered {} after), \
             aiosmtpd {:>6.0} msgs/s ({m} in {:.1} s)",
            rate(n, took),
            took.as_secs_f64(),
            drain.map_or_else(
                || format!("not within {} s", DRAIN_LIMIT.as_secs()),
                |d| format!("{:.2} s", d.as_secs_f64())
            ),
            rate(m, their_took),
            their_took.as_secs_f64(),
        );
    }
    let ours_rate = rate(ours_total.0, ours_total.1);
    let theirs_rate = rate(theirs_total.0, theirs_total.1);
    println!(
        "(o) accepted messages/s, one client, one connection, ~2 KiB each: valbox {ours_rate:.0}, \
         aiosmtpd (Maildir) {theirs_rate:.0}, ratio valbox/aiosmtpd {:.2}",
        ours_rate / theirs_rate
    );
    drop(theirs);

    // Delivery delay, at a rate that leaves no backlog.
    let delays = delivery_delays(&base, &token, ours, &timed_id).await;
    println!(
        "(o) delivery delay, 250 to the val's call start, {} messages one per {} ms: \
         p50 {:.2} ms, p99 {:.2} ms (min {:.2}, max {:.2})",
        delays.mail.len(),
        SPACING.as_millis(),
        pct(&delays.mail, 0.5),
        pct(&delays.mail, 0.99),
        delays.mail[0],
        delays.mail[delays.mail.len() - 1],
    );
    println!(
        "(o) HTTP call of hello between them, {} calls: p50 {:.2} ms, p99 {:.2} ms; \
         ratio delivery delay p50 / HTTP call p50 {:.2}",
        delays.http.len(),
        pct(&delays.http, 0.5),
        pct(&delays.http, 0.99),
        pct(&delays.mail, 0.5) / pct(&delays.http, 0.5),
    );
    server.shutdown().await.unwrap();
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

/// Send messages from `tag`-numbered senders to `to` on one connection
/// until `time` has passed or `most` are sent; how many, in how long.
async fn send_for(
    addr: SocketAddr,
    to: &str,
    tag: &str,
    time: Duration,
    most: usize,
) -> (usize, Duration) {
    let mut smtp = Smtp::connect(addr).await;
    let started = Instant::now();
    let mut n = 0;
    while n < most && started.elapsed() < time {
        smtp.send(&format!("{tag}{n}@example.com"), to, n).await;
        n += 1;
    }
    let took = started.elapsed();
    smtp.quit().await;
    (n, took)
}

/// Rows in the owner's `inbox` table: messages the `inbox` vals kept.
async fn kept(http: &reqwest::Client, base: &str, token: &str) -> usize {
    let resp = http
        .post(format!("{base}/v1/sqlite/execute"))
        .bearer_auth(token)
        .json(&json!({ "statement": "SELECT count(*) FROM inbox" }))
        .send()
        .await
        .unwrap();
    if !resp.status().is_success() {
        return 0; // no table before the first delivery
    }
    let body: Value = resp.json().await.unwrap();
    body["rows"][0][0].as_u64().unwrap_or(0) as usize
}

/// Wait until the vals kept `n` messages in all; how long that took, if
/// within [`DRAIN_LIMIT`].
async fn drained(base: &str, token: &str, n: usize) -> Option<Duration> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < DRAIN_LIMIT {
        if kept(&http, base, token).await >= n {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Milliseconds, each set sorted.
struct Delays {
    mail: Vec<f64>,
    http: Vec<f64>,
}

/// Send [`TIMED`] messages to the val `timed`, one every [`SPACING`],
/// noting when each 250 came, with an HTTP call of `hello` half-way
/// between each two; then match the messages to the val's log records by
/// their sender, which the val prints.
async fn delivery_delays(base: &str, token: &str, addr: SocketAddr, val_id: &str) -> Delays {
    let to = format!("bench.timed@{DOMAIN}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let hello = format!("{base}/x/bench/hello/");
    let call = || async {
        let started = Instant::now();
        let resp = http.get(&hello).send().await.unwrap();
        assert!(resp.status().is_success(), "hello: {}", resp.status());
        resp.bytes().await.unwrap();
        common::ms(started.elapsed())
    };
    for _ in 0..50 {
        call().await;
    }
    send_for(addr, &to, "warm", Duration::MAX, 5).await;

    let mut smtp = Smtp::connect(addr).await;
    let mut acked = Vec::with_capacity(TIMED);
    let mut calls = Vec::with_capacity(TIMED);
    let mut tick = tokio::time::interval(SPACING);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..TIMED {
        tick.tick().await;
        let due = Instant::now();
        smtp.send(&format!("timed{i}@example.com"), &to, i).await;
        acked.push(unix_ns());
        tokio::time::sleep_until((due + SPACING / 2).into()).await;
        calls.push(call().await);
    }
    smtp.quit().await;

    // Each message's call start, from the log.
    let started = Instant::now();
    let mut starts: HashMap<usize, i64> = HashMap::new();
    while starts.len() < TIMED {
        assert!(
            started.elapsed() < DRAIN_LIMIT,
            "only {} of {TIMED} deliveries logged",
            starts.len()
        );
        let page: Value = http
            .get(format!(
                "{base}/v1/telemetry/logs?val_id={val_id}&direction=asc&limit=1000"
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        starts = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|log| log["attributes"]["trigger"] == "email")
            .filter_map(|log| {
                let out = log["attributes"]["stdout"].as_str()?;
                let sender = out.strip_prefix("kept mail from timed")?;
                let i = sender.split('@').next()?.parse().ok()?;
                Some((i, log["timeUnixNano"].as_str()?.parse().ok()?))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut mail: Vec<f64> = (0..TIMED)
        .map(|i| (starts[&i] - acked[i]) as f64 / 1e6)
        .collect();
    mail.sort_by(f64::total_cmp);
    calls.sort_by(f64::total_cmp);
    Delays { mail, http: calls }
}

fn unix_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// The value under which the fraction `p` of sorted `v` lie.
fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

/// A minimal SMTP client: EHLO once, then each message's MAIL, RCPT and
/// DATA, waiting for every reply.
struct Smtp {
    conn: BufReader<TcpStream>,
    line: String,
}

impl Smtp {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut smtp = Self {
            conn: BufReader::new(stream),
            line: String::new(),
        };
        smtp.expect(220, "the greeting").await;
        smtp.command("EHLO client.example.com\r\n", 250).await;
        smtp
    }

    /// Read one reply, all its lines; panic unless its code is `want`.
    async fn expect(&mut self, want: u16, after: &str) {
        loop {
            self.line.clear();
            let read = self.conn.read_line(&mut self.line).await.unwrap();
            assert!(read > 0, "the server hung up after {after}");
            if self.line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        let code: u16 = self.line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        assert_eq!(code, want, "after {after}: {}", self.line.trim_end());
    }

    async fn command(&mut self, line: &str, want: u16) {
        self.conn
            .get_mut()
            .write_all(line.as_bytes())
            .await
            .unwrap();
        self.expect(want, line.trim_end()).await;
    }

    async fn send(&mut self, from: &str, to: &str, n: usize) {
        self.command(&format!("MAIL FROM:<{from}>\r\n"), 250).await;
        self.command(&format!("RCPT TO:<{to}>\r\n"), 250).await;
        self.command("DATA\r\n", 354).await;
        self.command(&message(from, to, n), 250).await;
    }

    async fn quit(mut self) {
        self.command("QUIT\r\n", 221).await;
    }
}

/// A plain text mail of about 2 KiB, its headers as a mail client writes
/// them, ended for DATA (`.` alone on the last line).
fn message(from: &str, to: &str, n: usize) -> String {
    let mut text = format!(
        "From: Bench Sender <{from}>\r\n\
         To: <{to}>\r\n\
         Subject: Weekly report, part {n}\r\n\
         Date: Mon, 04 May 2026 09:30:00 +0000\r\n\
         Message-ID: <{n}.{from}>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8; format=flowed\r\n\
         Content-Transfer-Encoding: 7bit\r\n\
         User-Agent: bench/1.0\r\n\
         \r\n"
    );
    let words = BODY.split_whitespace().cycle();
    let mut line = String::new();
    for word in words {
        if text.len() + line.len() >= 2048 {
            break;
        }
        if line.len() + word.len() >= 72 {
            text.push_str(&line);
            text.push_str("\r\n");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    text.push_str(&line);
    text.push_str("\r\n.\r\n");
    text
}

const BODY: &str = "Hello all, here is this week's report. The new build went out on \
Tuesday without trouble and the error rate stayed flat through the week. Two customers \
asked about exporting their data as CSV; we told them it is planned for next month. The \
database migration is half done: the read replicas are on the new version and the primary \
moves on Thursday night, when traffic is lowest. Please keep an eye on the dashboards that \
evening and page the on-call engineer if anything looks wrong. Next week we start on the \
billing changes, so read the design notes before Monday's meeting. Thanks, and have a good \
weekend.";

/// aiosmtpd on a free loopback port, with the Mailbox handler writing to
/// a Maildir; stopped when dropped.
struct Aiosmtpd {
    child: Child,
    addr: SocketAddr,
}

impl Aiosmtpd {
    async fn start(maildir: &Path) -> Self {
        let port = common::free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &addr.to_string()])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd; scripts/test does)");
        let started = Instant::now();
        while TcpStream::connect(addr).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, addr }
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

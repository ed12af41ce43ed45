//! The server's life as an operator sees it, through the real binary:
//! `/healthz` and `/readyz`; a SIGTERM during a slow call, which finishes
//! the call, writes its log record and exits 0; HTTPS with HTTP/2 and a
//! certificate renewed in place; the metrics listener; trusted proxies;
//! and a request body that trickles.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

mod common;
use common::{deploy, free_port};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_slow_call_finish_and_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let token = valbox::cli::create_user(data.path(), "ops", "ops@example.com")
        .await
        .unwrap();
    let port = free_port();
    let flags = ["--no-fuel-metering", "--timeout-ms", "20000"];
    let mut server = serve_with(data.path(), port, &flags, &reqwest::Client::new())
        .await
        .child;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );

    deploy(&base, &token, "spin", "spin").await;

    // A call long enough to still run when the signal comes.
    let began = Instant::now();
    let probe = 20_000_000u64;
    http.get(format!("{base}/x/ops/spin/?iters={probe}"))
        .send()
        .await
        .unwrap();
    let per_iter = began.elapsed().as_secs_f64() / probe as f64;
    let iters = ((2.0 / per_iter) as u64).max(probe);
    let slow = tokio::spawn({
        let url = format!("{base}/x/ops/spin/?iters={iters}");
        async move {
            let resp = reqwest::get(url).await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!slow.is_finished(), "the slow call ended before the signal");
    let pid = server.id().unwrap() as i32;
    // SAFETY: sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!("spun {iters}"));
    let exit = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server did not exit after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit}");

    // The slow call's log record was written before the exit.
    let db = rusqlite::Connection::open(data.path().join("valbox.db")).unwrap();
    let logged: i64 = db
        .query_row(
            "SELECT count(*) FROM call_logs WHERE val_name = 'spin' AND status = 200",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(logged, 2, "both calls' records");
}

/// A `valbox serve` with extra flags, its log (stderr) kept in a file and
/// what it printed at start (stdout) read for its addresses.
struct Running {
    child: Child,
    log: std::path::PathBuf,
    metrics: Option<String>,
}

async fn serve_with(data: &Path, port: u16, flags: &[&str], probe: &reqwest::Client) -> Running {
    use tokio::io::AsyncBufReadExt;
    let log = data.join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_valbox"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .args(flags)
        .env("RUST_LOG", "valbox=debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("starting valbox serve");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut metrics = None;
    let mut listening = false;
    let scheme = if flags.contains(&"--tls-cert") {
        "https"
    } else {
        "http"
    };
    let wants_metrics = flags.contains(&"--metrics-listen");
    while !listening || (wants_metrics && metrics.is_none()) {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the server printed nothing for 30 s")
            .unwrap()
            .unwrap_or_else(|| panic!("the server exited: {}", read(&log)));
        if let Some(url) = line.strip_prefix("valbox metrics on ") {
            metrics = Some(url.to_string());
        }
        if line.starts_with("valbox listening on") {
            assert_eq!(
                line,
                format!("valbox listening on {scheme}://127.0.0.1:{port}")
            );
            listening = true;
        }
    }
    let began = Instant::now();
    while probe
        .get(format!("{scheme}://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(began.elapsed() < Duration::from_secs(30), "no answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Running {
        child,
        log,
        metrics,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A self-signed certificate for 127.0.0.1, written to `cert` and `key`
/// as a renewal tool would (each file replaced whole); returns its DER.
fn write_certificate(cert: &Path, key: &Path) -> Vec<u8> {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    for (path, text) in [
        (key, made.signing_key.serialize_pem()),
        (cert, made.cert.pem()),
    ] {
        let part = path.with_extension("part");
        std::fs::write(&part, text).unwrap();
        std::fs::rename(&part, path).unwrap();
    }
    made.cert.der().to_vec()
}

/// A TLS connection to the server trusting `roots`, offering `alpn`.
async fn tls_connect(
    port: u16,
    roots: &[&[u8]],
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store
            .add(rustls::pki_types::CertificateDer::from(root.to_vec()))
            .unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn https_speaks_http2_reloads_a_renewed_certificate_and_sets_secure_cookies() {
    let data = tempfile::tempdir().unwrap();
    valbox::cli::create_user(data.path(), "ops", "ops@example.com")
        .await
        .unwrap();
    let (cert, key) = (data.path().join("cert.pem"), data.path().join("key.pem"));
    let first = write_certificate(&cert, &key);
    let port = free_port();
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(&first).unwrap())
        .build()
        .unwrap();
    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let server = serve_with(
        data.path(),
        port,
        &["--tls-cert", cert_arg, "--tls-key", key_arg],
        &https,
    )
    .await;
    let base = format!("https://127.0.0.1:{port}");
    assert_eq!(
        https
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // HTTP/2 by ALPN.
    let tls = tls_connect(port, &[&first], &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(format!("{base}/healthz"))
        .body(String::new())
        .unwrap();
    let response = h2.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);

    // The web UI's session cookie is Secure.
    let store = valbox_store::sqlite::open(&data.path().join("valbox.db")).unwrap();
    let link = valbox_server::services::sign_in::login_link(&store, "ops", &base)
        .await
        .unwrap()
        .unwrap();
    let secret = link.split("link=").nth(1).unwrap().to_string();
    let no_redirects = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(&first).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = no_redirects
        .post(format!("{base}/login"))
        .header("origin", &base)
        .form(&[("link", secret)])
        .send()
        .await
        .unwrap();
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // A renewed certificate is served without a restart.
    let second = write_certificate(&cert, &key);
    let began = Instant::now();
    loop {
        let tls = tls_connect(port, &[&first, &second], &[b"http/1.1"]).await;
        let served = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        if served == second {
            break;
        }
        assert_eq!(served, first);
        assert!(
            began.elapsed() < Duration::from_secs(15),
            "the renewed certificate was not picked up: {}",
            read(&server.log)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(read(&server.log).contains("TLS certificate reloaded"));

    // A renewal that is not a certificate keeps the one in use.
    std::fs::write(&cert, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let tls = tls_connect(port, &[&second], &[b"http/1.1"]).await;
    assert_eq!(
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec(),
        second
    );
    assert!(read(&server.log).contains("did not load"));
}

#[tokio::test]
async fn tls_flags_are_checked_at_start() {
    let data = tempfile::tempdir().unwrap();
    let run = |args: Vec<String>| {
        let data = data.path().to_owned();
        async move {
            let out = Command::new(env!("CARGO_BIN_EXE_valbox"))
                .args(["serve", "--listen", "127.0.0.1:0", "--data"])
                .arg(data)
                .args(args)
                .output()
                .await
                .unwrap();
            assert!(!out.status.success());
            String::from_utf8_lossy(&out.stderr).to_string()
        }
    };
    let err = run(vec!["--tls-cert".into(), "cert.pem".into()]).await;
    assert!(err.contains("--tls-cert needs --tls-key"), "{err}");
    let missing = data.path().join("missing.pem").display().to_string();
    let err = run(vec![
        "--tls-cert".into(),
        missing.clone(),
        "--tls-key".into(),
        missing,
    ])
    .await;
    assert!(err.contains("missing.pem"), "{err}");
    let err = run(vec!["--trusted-proxy".into(), "10.0.0.0/40".into()]).await;
    assert!(err.contains("10.0.0.0/40"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_trusted_proxies_and_a_trickling_body() {
    let data = tempfile::tempdir().unwrap();
    let token = valbox::cli::create_user(data.path(), "ops", "ops@example.com")
        .await
        .unwrap();
    let port = free_port();
    let http = reqwest::Client::new();
    let server = serve_with(
        data.path(),
        port,
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--trusted-proxy",
            "127.0.0.1",
            "--body-timeout-ms",
            "1000",
        ],
        &http,
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    deploy(&base, &token, "hello", "hello").await;

    // Through the trusted proxy (127.0.0.1), its header names the client;
    // from anyone else, the header is ignored.
    let hello = format!("{base}/x/ops/hello/?name=proxy");
    let through_proxy = http
        .get(&hello)
        .header("x-forwarded-for", "1.1.1.1, 203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(through_proxy.text().await.unwrap(), "Hello, proxy!");
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let forged = other
        .get(&hello)
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 200);

    // A body that trickles: a 408 after the body timeout, and the
    // connection closed.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    slow.write_all(
        b"POST /x/ops/hello/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nfirst bytes",
    )
    .await
    .unwrap();
    let began = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer))
        .await
        .expect("the connection stayed open")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_body_timeout"), "{answer}");
    assert!(began.elapsed() >= Duration::from_millis(900));

    let log = read(&server.log);
    assert!(log.contains("client=203.0.113.9"), "{log}");
    assert!(log.contains("client=127.0.0.2"), "{log}");
    assert!(!log.contains("198.51.100.7"), "{log}");
    assert!(log.contains("call_id="), "{log}");

    // The metrics: on their own listener only.
    let metrics_url = server.metrics.clone().expect("a metrics address");
    let text = http
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "valbox_calls_total{trigger=\"http\",status=\"200\"} 2",
        "valbox_http_requests_total{status=\"408\"} 1",
        "valbox_request_body_timeouts_total 1",
        "valbox_loaded_components 1",
        "valbox_email_outbox_depth 0",
        "valbox_call_duration_seconds_count 2",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(text.contains("valbox_open_connections "), "{text}");
    let public = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
    drop(server.child);
}

//! The edge: connection caps in all and per client address, and the time
//! a client may take to send a request head (or sit idle between
//! keep-alive requests). A client holding connections open with partial
//! heads, or never reading its answers, neither stalls the server nor
//! keeps them for long. One authority names the host a request is for,
//! and a request head has a size limit.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::http::Request;
use serde_json::Value;
use support::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A connection from `from` that sends half a request head and stops.
async fn stalled(server: SocketAddr, from: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    stream
}

/// Whether the server closed `stream` within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

async fn hello_from(s: &TestServer, from: IpAddr) -> Result<String, reqwest::Error> {
    let client = reqwest::Client::builder()
        .local_address(from)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    client
        .get(format!("{}/x/alice/hello/", s.base))
        .send()
        .await?
        .text()
        .await
}

#[tokio::test]
async fn one_client_address_cannot_hold_more_than_its_share() {
    let s = TestServer::start_configured(|c| {
        c.edge.max_connections_per_client = 8;
        c.edge.header_timeout = Duration::from_secs(2);
    })
    .await;
    s.deploy("hello", "hello", "public").await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(stalled(s.addr, IpAddr::V4(Ipv4Addr::LOCALHOST)).await);
    }
    // Give the server time to accept them all.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The ninth from the same address is closed at once...
    let mut ninth = stalled(s.addr, IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    assert!(closed_within(&mut ninth, Duration::from_secs(1)).await);
    // ...while another client is served as usual.
    assert_eq!(hello_from(&s, OTHER_CLIENT).await.unwrap(), "Hello, world!");
    // The stalled heads time out, and their address may connect again.
    let began = Instant::now();
    for stream in &mut held {
        assert!(closed_within(stream, Duration::from_secs(5)).await);
    }
    assert!(began.elapsed() >= Duration::from_millis(1500));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        hello_from(&s, IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await
            .unwrap(),
        "Hello, world!"
    );
}

#[tokio::test]
async fn past_the_total_cap_connections_are_refused_until_some_close() {
    let s = TestServer::start_configured(|c| {
        c.edge.max_connections = 4;
        c.edge.header_timeout = Duration::from_secs(2);
    })
    .await;
    s.deploy("hello", "hello", "public").await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(stalled(s.addr, IpAddr::V4(Ipv4Addr::LOCALHOST)).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        hello_from(&s, OTHER_CLIENT).await.is_err(),
        "served past the cap"
    );
    for stream in &mut held {
        assert!(closed_within(stream, Duration::from_secs(5)).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hello_from(&s, OTHER_CLIENT).await.unwrap(), "Hello, world!");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_head_timeout() {
    let s = TestServer::start_configured(|c| {
        c.edge.header_timeout = Duration::from_secs(1);
    })
    .await;
    s.deploy("hello", "hello", "public").await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(b"GET /x/alice/hello/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive, then closed once idle for the timeout.
    assert!(!closed_within(&mut stream, Duration::from_millis(300)).await);
    assert!(closed_within(&mut stream, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_head_timeout() {
    let s = TestServer::start_configured(|c| {
        c.edge.header_timeout = Duration::from_secs(1);
    })
    .await;
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    let began = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(4)).await);
    assert!(began.elapsed() >= Duration::from_millis(800));
}

/// Send `head` (and whatever follows it) on a new connection and read the
/// answer until the server closes: its status and everything after the
/// status line.
async fn raw_http1(server: SocketAddr, head: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(server).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let read_all = async {
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            answer.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all)
        .await
        .expect("the server neither answered nor closed");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    (status, answer)
}

/// The `error` code of a JSON error answer read by [`raw_http1`].
fn error_code(answer: &str) -> String {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{answer:?}"));
    assert!(body["message"].is_string(), "{body}");
    body["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_host_a_request_is_for_is_one_authority() {
    let s = TestServer::start().await;
    s.deploy("hello", "hello", "public").await;
    let val_host = "alice-hello.localhost";
    // Two Host fields: refused, neither routes.
    let (status, answer) = raw_http1(
        s.addr,
        &format!("GET / HTTP/1.1\r\nHost: {val_host}\r\nHost: other\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (400, "duplicate_host")
    );
    let (status, answer) = raw_http1(
        s.addr,
        &format!("GET / HTTP/1.1\r\nHost: other\r\nHost: {val_host}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (400, "duplicate_host")
    );
    // HTTP/1.1 without Host, and a Host that is not a host.
    let (status, answer) =
        raw_http1(s.addr, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (400, "missing_host")
    );
    let (status, answer) = raw_http1(
        s.addr,
        "GET /healthz HTTP/1.1\r\nHost: user@x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (400, "invalid_host")
    );
    // An absolute-form target that names another host than Host: refused,
    // whichever of the two is the val's.
    let (status, answer) = raw_http1(
        s.addr,
        &format!("GET http://other/ HTTP/1.1\r\nHost: {val_host}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (400, "host_mismatch")
    );
    let (status, answer) = raw_http1(
        s.addr,
        &format!("GET http://{val_host}/ HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (400, "host_mismatch")
    );
    // The same host in both (the default port spelled out or not, any
    // case): the target routes.
    let (status, answer) = raw_http1(
        s.addr,
        &format!(
            "GET http://{val_host}/ HTTP/1.1\r\nHost: ALICE-hello.localhost:80\r\n\
             Connection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.ends_with("Hello, world!"), "{answer}");
    // HTTP/1.0 may leave Host out: the absolute-form target still routes.
    let (status, answer) =
        raw_http1(s.addr, &format!("GET http://{val_host}/ HTTP/1.0\r\n\r\n")).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.ends_with("Hello, world!"), "{answer}");
}

type H2Sender = h2::client::SendRequest<&'static [u8]>;

/// An HTTP/2 connection (prior knowledge) whose streams get a window of
/// `window` bytes; the connection's task is returned to watch it end.
async fn h2_connect(
    server: SocketAddr,
    window: u32,
) -> (H2Sender, tokio::task::JoinHandle<Result<(), h2::Error>>) {
    let tcp = TcpStream::connect(server).await.unwrap();
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(window)
        .handshake::<_, &'static [u8]>(tcp)
        .await
        .unwrap();
    (send, tokio::spawn(connection))
}

/// GET `uri` (its authority is `:authority`) with these `host` fields:
/// the status and body, or the error that reset the stream.
async fn h2_get(
    send: &H2Sender,
    uri: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), h2::Error> {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (response, _) = send
        .clone()
        .ready()
        .await?
        .send_request(request.body(()).unwrap(), true)?;
    let response = response.await?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    Ok((status, String::from_utf8(text).unwrap()))
}

fn json_error(body: &str) -> String {
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body:?}"));
    assert!(body["message"].is_string(), "{body}");
    body["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn http2_routes_by_its_authority_and_refuses_a_host_that_disagrees() {
    let s = TestServer::start().await;
    s.deploy("hello", "hello", "public").await;
    let port = s.addr.port();
    let (send, _connection) = h2_connect(s.addr, 65_535).await;
    let val = format!("http://alice-hello.localhost:{port}/");
    // :authority alone routes.
    let (status, body) = h2_get(&send, &val, &[]).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "Hello, world!"));
    // A `host` that names the same host is fine.
    let host = format!("alice-hello.localhost:{port}");
    let (status, body) = h2_get(&send, &val, &[("host", &host)]).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "Hello, world!"));
    // One that disagrees is refused, whichever of the two is the val's.
    let (status, body) = h2_get(&send, &val, &[("host", "other")]).await.unwrap();
    assert_eq!((status, json_error(&body).as_str()), (400, "host_mismatch"));
    let other = format!("http://other:{port}/");
    let (status, body) = h2_get(&send, &other, &[("host", &host)]).await.unwrap();
    assert_eq!((status, json_error(&body).as_str()), (400, "host_mismatch"));
    // Two `host` fields are refused too.
    let (status, body) = h2_get(&send, &val, &[("host", &host), ("host", &host)])
        .await
        .unwrap();
    assert_eq!(
        (status, json_error(&body).as_str()),
        (400, "duplicate_host")
    );
}

#[tokio::test]
async fn a_request_head_past_the_limit_is_answered_431() {
    let s = TestServer::start().await;
    let big = "a".repeat(200 << 10);
    let (status, answer) = raw_http1(
        s.addr,
        &format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 431, "{}", &answer[..answer.len().min(200)]);
    // Many small headers count together.
    let many: String = (0..90)
        .map(|i| format!("X-{i}: {}\r\n", "b".repeat(400)))
        .collect();
    let (status, _) = raw_http1(
        s.addr,
        &format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 431);
    // A real client sending its request in one go reads the 431 too.
    let resp = s
        .http
        .get(format!("{}/healthz", s.base))
        .header("x-big", &big)
        .send()
        .await
        .expect("the 431 was lost");
    assert_eq!(resp.status().as_u16(), 431);
    // A large head within the limit is served.
    let (status, _) = raw_http1(
        s.addr,
        &format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(20 << 10)
        ),
    )
    .await;
    assert_eq!(status, 200);
    // HTTP/2: the same limit on the header list.
    let (send, _connection) = h2_connect(s.addr, 65_535).await;
    let uri = format!("http://{}/healthz", s.addr);
    let (status, _) = h2_get(&send, &uri, &[("x-big", &"a".repeat(20 << 10))])
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, _) = h2_get(&send, &uri, &[("x-big", &"a".repeat(40 << 10))])
        .await
        .unwrap();
    assert_eq!(status, 431);
    // Far past it, h2 does not decode the rest and ends the connection.
    let refused = h2_get(&send, &uri, &[("x-big", &big)]).await.unwrap_err();
    assert_eq!(
        refused.reason(),
        Some(h2::Reason::ENHANCE_YOUR_CALM),
        "{refused}"
    );
}

/// Read what the server sends until it closes, for at most `within`: the
/// bytes read.
async fn drain(stream: &mut TcpStream, within: Duration) -> usize {
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 16];
    let _ = tokio::time::timeout(within, async {
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            total += n;
        }
    })
    .await;
    total
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_loses_its_connections() {
    let s = TestServer::start_configured(|c| {
        c.edge.max_connections_per_client = 2;
        c.edge.write_timeout = Duration::from_secs(1);
    })
    .await;
    let val = s.deploy("hello", "hello", "public").await;
    let path = format!(
        "/v2/vals/{}/versions/0/component",
        val["valId"].as_str().unwrap()
    );
    let size = s
        .get(&path, Some(&s.alice))
        .await
        .bytes()
        .await
        .unwrap()
        .len();
    // Pipelined requests for megabytes of answers, never read.
    const REQUESTS: usize = 200;
    let requests = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        s.alice
    )
    .repeat(REQUESTS);
    let mut held = Vec::new();
    for _ in 0..2 {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(8192).unwrap();
        socket
            .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .unwrap();
        let mut stream = socket.connect(s.addr).await.unwrap();
        stream.write_all(requests.as_bytes()).await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // While stalled they hold their address's share...
    let mut third = stalled(s.addr, IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    assert!(closed_within(&mut third, Duration::from_secs(1)).await);
    assert_eq!(hello_from(&s, OTHER_CLIENT).await.unwrap(), "Hello, world!");
    // ...until the write timeout closes them, long before all is sent.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for stream in &mut held {
        let read = drain(stream, Duration::from_secs(5)).await;
        assert!(
            read < REQUESTS * size / 2,
            "read {read} of {}",
            REQUESTS * size
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        hello_from(&s, IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await
            .unwrap(),
        "Hello, world!"
    );
}

#[tokio::test]
async fn an_http2_answer_the_client_opens_no_window_for_closes_the_connection() {
    let s = TestServer::start_configured(|c| {
        c.edge.write_timeout = Duration::from_secs(1);
        c.edge.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let val = s.deploy("hello", "hello", "public").await;
    let component = format!(
        "/v2/vals/{}/versions/0/component",
        val["valId"].as_str().unwrap()
    );
    let bearer = format!("Bearer {}", s.alice);
    // No window for any of it; a window for the first 64 KiB of a larger
    // answer, never opened further (the client reads nothing).
    for (window, path) in [(0, "/healthz"), (65_535, component.as_str())] {
        let (send, connection) = h2_connect(s.addr, window).await;
        let request = Request::get(format!("http://{}{path}", s.addr))
            .header("authorization", &bearer)
            .body(())
            .unwrap();
        let mut send = send.ready().await.unwrap();
        let (response, _) = send.send_request(request, true).unwrap();
        // The head arrives; the body cannot. (Both are kept: with neither
        // a stream nor a handle left the client would close by itself.)
        let response = response.await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let began = Instant::now();
        let ended = tokio::time::timeout(Duration::from_secs(5), connection).await;
        assert!(ended.is_ok(), "held open, window {window}");
        assert!(began.elapsed() >= Duration::from_millis(500));
        drop((send, response));
    }
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let s = TestServer::start_configured(|c| {
        c.edge.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let (send, connection) = h2_connect(s.addr, 65_535).await;
    let uri = format!("http://{}/healthz", s.addr);
    let (status, _) = h2_get(&send, &uri, &[]).await.unwrap();
    assert_eq!(status, 200);
    let began = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(ended.is_ok(), "the idle connection was held open");
    assert!(began.elapsed() >= Duration::from_millis(800));
    // Closed gracefully (GOAWAY), not dropped.
    ended.unwrap().unwrap().unwrap();
}

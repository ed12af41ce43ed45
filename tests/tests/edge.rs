//! The edge: connection caps in all and per client address, and the time
//! a client may take to send a request head (or sit idle between
//! keep-alive requests). A client holding connections open with partial
//! heads neither stalls the server nor keeps them for long.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

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

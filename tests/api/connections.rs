//! Connections from clients that are slow, idle or too many: the header
//! timeout, the keep-alive timeout and the connection cap, over raw TCP.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{TestApp, metric};

/// Liveness bound: before these limits existed, such connections stayed
/// open for as long as the client wanted.
const LIVENESS: Duration = Duration::from_secs(20);

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(LIVENESS, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the server kept the connection open past {LIVENESS:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    let app = TestApp::spawn_with(|c| {
        c.http_header_timeout_ms = 1_000;
        c.http_keep_alive_timeout_ms = 60_000;
    })
    .await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header line every 200 ms, for longer than the timeout allows.
    let mut cut_off = false;
    for i in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream
            .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            cut_off = true;
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut probe)).await
        {
            cut_off = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    println!("trickling client cut off after {elapsed:?}");
    assert!(cut_off, "still open after 20 s of trickled headers");
    assert!(elapsed >= Duration::from_millis(1_000), "{elapsed:?}");
    assert!(
        metric(
            &app,
            "customer_api_http_connections_closed_total{reason=\"header_timeout\"}"
        ) >= 1.0
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let app = TestApp::spawn_with(|c| c.http_keep_alive_timeout_ms = 300).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let received = read_until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    println!(
        "idle connection closed {:?} after its response",
        started.elapsed()
    );
    assert!(
        metric(
            &app,
            "customer_api_http_connections_closed_total{reason=\"idle\"}"
        ) >= 1.0
    );
    // A connection that never sends anything is idle too.
    let mut silent = connect(&app).await;
    assert!(read_until_closed(&mut silent).await.is_empty());
}

/// A request's head with `Expect: 100-continue`: the server says "100
/// Continue" once the handler reads the body, so the request is then in
/// flight, and stays so while the body does not come.
async fn request_in_flight(app: &TestApp) -> TcpStream {
    let mut stream = connect(app).await;
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 40\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    read_until(&mut stream, |received| {
        String::from_utf8_lossy(received).contains("100 Continue\r\n\r\n")
    })
    .await;
    stream
}

async fn get_healthz(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_response(stream).await
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_while_every_connection_serves_a_request() {
    let app = TestApp::spawn_with(|c| {
        c.http_max_connections = 2;
        c.http_header_timeout_ms = 60_000;
        c.http_keep_alive_timeout_ms = 60_000;
        c.request_timeout_ms = 60_000;
    })
    .await;
    let held = [request_in_flight(&app).await, request_in_flight(&app).await];
    let third = tokio::spawn({
        let address = app.address.clone();
        async move {
            let mut stream = TcpStream::connect(address.trim_start_matches("http://"))
                .await
                .expect("connect");
            get_healthz(&mut stream).await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served beyond the cap"
    );
    assert_eq!(metric(&app, "customer_api_http_connections "), 2.0);
    drop(held);
    let answer = tokio::time::timeout(LIVENESS, third)
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        metric(
            &app,
            "customer_api_http_connections_closed_total{reason=\"evicted\"}"
        ),
        0.0,
        "a connection serving a request was closed to make room"
    );
}

/// Before, 1,100 connections that had each sent one request kept every new
/// client waiting for the keep-alive timeout (5 s in the bench).
#[tokio::test]
async fn a_client_at_the_cap_takes_the_place_of_the_longest_idle_connection() {
    let app = TestApp::spawn_with(|c| {
        c.http_max_connections = 2;
        c.http_header_timeout_ms = 60_000;
        c.http_keep_alive_timeout_ms = 60_000;
    })
    .await;
    let mut oldest = connect(&app).await;
    assert!(get_healthz(&mut oldest).await.starts_with("HTTP/1.1 200"));
    // Idle times are kept to the millisecond.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut newer = connect(&app).await;
    assert!(get_healthz(&mut newer).await.starts_with("HTTP/1.1 200"));

    let mut third = connect(&app).await;
    let answer = get_healthz(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        read_until_closed(&mut oldest).await.is_empty(),
        "the longest idle connection was closed without a word"
    );
    let again = get_healthz(&mut newer).await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    assert_eq!(
        metric(
            &app,
            "customer_api_http_connections_closed_total{reason=\"evicted\"}"
        ),
        1.0
    );
    assert_eq!(metric(&app, "customer_api_http_connections "), 2.0);
}

#[tokio::test]
async fn metrics_can_move_to_an_operators_listener() {
    let app =
        TestApp::spawn_with(|c| c.metrics_listen_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    assert_eq!(
        app.get("/metrics").await.status(),
        404,
        "metrics left the public port"
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "probes stay for load balancers"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let operations = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(customer_api::serve_operations(listener, app.state.clone()));
    let metrics = app
        .http()
        .get(format!("{operations}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("customer_api_http_connections")
    );
    let graphql = app
        .http()
        .post(format!("{operations}/graphql"))
        .json(&serde_json::json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(graphql.status(), 404, "the operators' port serves no API");
}

/// Reads until `complete` says what has arrived is whole; returns it.
async fn read_until(stream: &mut TcpStream, complete: impl Fn(&[u8]) -> bool) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(LIVENESS, stream.read(&mut buffer))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed before answering: {received:?}");
        received.extend_from_slice(&buffer[..n]);
        if complete(&received) {
            return String::from_utf8_lossy(&received).into_owned();
        }
    }
}

/// Reads one response head and its `Content-Length` body.
async fn read_response(stream: &mut TcpStream) -> String {
    read_until(stream, |received| {
        let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
            return false;
        };
        let length = String::from_utf8_lossy(&received[..end])
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .map_or(0, |n| n.trim().parse::<usize>().unwrap());
        received.len() >= end + 4 + length
    })
    .await
}

/// A refusal sent before the request's body has arrived leaves the body on
/// the connection, which the server then drops: it must say so, or the
/// client's next request on that connection fails (found by the fuzzer).
#[tokio::test]
async fn refusals_sent_before_the_body_arrived_say_the_connection_closes() {
    let app = TestApp::spawn().await;
    for (method, path, status) in [
        ("PUT", "/v1.0/nope", "404"),
        ("PUT", "/v1.0/accesskeys/", "404"),
        ("POST", "/auth/x", "404"),
        ("POST", "/v1.0/customer", "405"),
    ] {
        let mut stream = connect(&app).await;
        let body = r#"{"name": "a"}"#;
        stream
            .write_all(
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let answer = read_response(&mut stream).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {answer}"
        );
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("\r\nconnection: close\r\n"),
            "{method} {path} answered before its body and kept quiet about closing: {answer}"
        );
    }
    // A request whose body was read keeps its connection.
    let mut stream = connect(&app).await;
    for _ in 0..2 {
        let body = r#"{"query": "{ __typename }"}"#;
        stream
            .write_all(
                format!(
                    "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let answer = read_response(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            !answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
}

/// A burst of connections waits in the kernel's accept queue while the
/// accept loop catches up: with nothing accepting, 300 handshakes complete
/// on the server's listener (the same `listen` as `main`). The 128 that
/// `TcpListener::bind` asks for dropped the 130th SYN, and that client
/// retried for seconds.
#[tokio::test]
async fn a_burst_of_connections_waits_in_the_accept_queue() {
    let listener = customer_api::http::server::listen(([127, 0, 0, 1], 0).into()).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for n in 0..300 {
        // A handshake completes at once or, its SYN dropped, not for
        // seconds: the bound separates the two, it does not time anything.
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => queued.push(stream),
            other => panic!("connection {n} was not queued: {other:?}"),
        }
    }
    assert_eq!(queued.len(), 300);
    drop(listener);
}

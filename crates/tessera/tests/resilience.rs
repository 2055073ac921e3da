//! Black-box tests: the real `tessera` binary under clients that open connections
//! and never finish their requests (slowloris), send a body too slowly, hold
//! connections across a shutdown, or speak HTTP/2.
//!
//! Every wait here is a liveness bound with a generous ceiling (a loaded machine
//! only makes the tests slower), never an assertion that something was fast.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tessera_testkit::server::self_signed_localhost;
use tessera_testkit::{PostgresNode, Server, run_ok};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera");

/// How long any one step may take before the test gives up on it.
const CEILING: Duration = Duration::from_secs(60);

fn address(server: &Server) -> SocketAddr {
    server
        .url
        .strip_prefix("http://")
        .expect("a plain HTTP server")
        .parse()
        .unwrap()
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(CEILING)).unwrap();
    stream.set_write_timeout(Some(CEILING)).unwrap();
    stream
}

/// A connection that sent part of a request head (no blank line) and then stalls.
fn half_sent(address: SocketAddr) -> TcpStream {
    let mut stream = connect(address);
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1")
        .unwrap();
    stream
}

/// A POST whose head is complete and whose body is 10 of the 100 bytes it declares.
fn slow_body(address: SocketAddr) -> TcpStream {
    let mut stream = connect(address);
    stream
        .write_all(
            b"POST /oauth2/token HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\n\r\ngrant_type",
        )
        .unwrap();
    stream
}

/// A response read off a connection: status, lower-cased head and body.
struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads one response (the body by its Content-Length, or to the end of the
/// stream without one).
fn read_response(stream: &mut TcpStream) -> Response {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).expect("read a response head");
        assert!(n > 0, "the connection closed before a response head");
        received.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(received[..head_end].to_vec())
        .unwrap()
        .to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let length = head.lines().find_map(|line| {
        line.strip_prefix("content-length:")
            .map(|v| v.trim().parse::<usize>().unwrap())
    });
    let mut body = received[head_end..].to_vec();
    match length {
        Some(length) => {
            while body.len() < length {
                let n = stream.read(&mut chunk).expect("read a response body");
                assert!(n > 0, "the connection closed inside a response body");
                body.extend_from_slice(&chunk[..n]);
            }
        }
        None => {
            stream.read_to_end(&mut body).unwrap();
        }
    }
    Response { status, head, body }
}

/// `GET /readyz` over a new connection.
fn readyz(address: SocketAddr) -> Response {
    let mut stream = connect(address);
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    read_response(&mut stream)
}

fn assert_ready(address: SocketAddr) {
    let response = readyz(address);
    assert_eq!(
        response.status,
        200,
        "/readyz: {}",
        String::from_utf8_lossy(&response.body)
    );
}

/// Waits (up to the ceiling) until the server closes `stream`: the end of the
/// stream or a reset. Whatever it wrote first (a 408, say) is skipped.
fn assert_closed_by_server(stream: &mut TcpStream, what: &str) {
    let deadline = Instant::now() + CEILING;
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the server still holds {what}");
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the server still holds {what}")
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

fn assert_no_panic(output: &str) {
    assert!(
        !output.contains("panicked"),
        "the server panicked:\n{output}"
    );
}

/// A flood of half-sent requests, far more than the connection bound: the server
/// keeps answering new connections, and closes every half-sent one.
fn slowloris(data_dir: &Path, env: &[(&str, &str)]) {
    let mut env = env.to_vec();
    env.extend([
        ("TESSERA_MAX_CONNECTIONS", "20"),
        ("TESSERA_HEADER_READ_TIMEOUT_SECONDS", "2"),
        ("TESSERA_SHUTDOWN_GRACE_SECONDS", "1"),
    ]);
    let server = Server::start(BINARY, data_dir, &env);
    let address = address(&server);
    let mut flood: Vec<TcpStream> = (0..60).map(|_| half_sent(address)).collect();
    for _ in 0..3 {
        assert_ready(address);
    }
    for (i, stream) in flood.iter_mut().enumerate() {
        assert_closed_by_server(stream, &format!("half-sent request {i}"));
    }
    assert_ready(address);
    assert_no_panic(&server.stop());
}

#[test]
fn a_slowloris_flood_neither_silences_the_server_nor_stays_open() {
    let work = tempfile::tempdir().unwrap();
    slowloris(&work.path().join("data"), &[]);
}

#[test]
fn a_slowloris_flood_on_postgresql_neither_silences_the_server_nor_stays_open() {
    let node = PostgresNode::new("https://id.contoso.com/");
    let work = tempfile::tempdir().unwrap();
    slowloris(&work.path().join("data"), &node.env());
}

/// The case: 300 half-sent requests against a process allowed 256 open
/// files. The header timeout is long, so only the connection bound (lowered to
/// fit the limit) keeps the server answering. (`prlimit`, from util-linux, sets
/// the limit and runs the server in its own place.)
#[cfg(target_os = "linux")]
#[test]
fn three_hundred_half_sent_requests_under_256_open_files_leave_it_answering() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start_under(
        BINARY,
        &["prlimit", "--nofile=256:256"],
        "127.0.0.1:0",
        &work.path().join("data"),
        &[
            ("TESSERA_HEADER_READ_TIMEOUT_SECONDS", "600"),
            ("TESSERA_SHUTDOWN_GRACE_SECONDS", "1"),
        ],
    );
    let address = address(&server);
    let flood: Vec<TcpStream> = (0..300).map(|_| half_sent(address)).collect();
    for _ in 0..3 {
        assert_ready(address);
    }
    // And again after another wave, with the first one still held by the client.
    let more: Vec<TcpStream> = (0..300).map(|_| half_sent(address)).collect();
    assert_ready(address);
    // Shutting down with every slot taken still ends within the grace period.
    assert_no_panic(&server.stop());
    drop((flood, more));
}

#[test]
fn a_body_that_stalls_is_answered_408_and_its_connection_closed() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(
        BINARY,
        &work.path().join("data"),
        &[
            ("TESSERA_BODY_READ_TIMEOUT_SECONDS", "2"),
            ("TESSERA_SHUTDOWN_GRACE_SECONDS", "1"),
        ],
    );
    let address = address(&server);
    let mut stream = slow_body(address);
    let response = read_response(&mut stream);
    assert_eq!(response.status, 408);
    assert!(
        response.head.contains("\r\nconnection: close\r\n"),
        "{}",
        response.head
    );
    assert_closed_by_server(&mut stream, "the connection after the 408");
    assert_ready(address);
    assert_no_panic(&server.stop());
}

/// SIGTERM with a half-sent request, a request whose body never completes and an
/// idle keep-alive connection open: the process exits, successfully, once the
/// grace period is over. The read timeouts are far longer than the test's bound,
/// so only the shutdown can close these connections.
#[test]
fn shutdown_on_plain_http_ends_after_the_grace_period_despite_open_connections() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(
        BINARY,
        &work.path().join("data"),
        &[
            ("TESSERA_SHUTDOWN_GRACE_SECONDS", "1"),
            ("TESSERA_HEADER_READ_TIMEOUT_SECONDS", "600"),
            ("TESSERA_BODY_READ_TIMEOUT_SECONDS", "600"),
        ],
    );
    let address = address(&server);
    let mut half = half_sent(address);
    let mut in_flight = slow_body(address);
    let mut idle = connect(address);
    idle.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let answer = read_response(&mut idle);
    assert_eq!(answer.status, 200);
    assert!(
        !answer.head.contains("connection: close"),
        "{}",
        answer.head
    );
    // `stop` sends SIGTERM and requires a successful exit within its own bound.
    assert_no_panic(&server.stop());
    assert_closed_by_server(&mut half, "the half-sent request after exit");
    assert_closed_by_server(&mut in_flight, "the unfinished body after exit");
    assert_closed_by_server(&mut idle, "the idle connection after exit");
}

/// Runs curl over HTTP/2 (prior knowledge) and returns its `-w` output.
fn curl_h2(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--http2-prior-knowledge",
            "--max-time",
            "60",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code} %{http_version}",
        ])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {args:?} exited with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Issue 11, item 13: an HTTP/2 client that POSTs a large form to userinfo
/// without a valid token receives the whole refusal.
#[test]
fn an_http2_client_posting_a_large_form_receives_the_whole_answer() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(
        BINARY,
        &work.path().join("data"),
        &[("TESSERA_SHUTDOWN_GRACE_SECONDS", "1")],
    );
    let form = work.path().join("form");
    let mut body = b"access_token=not-a-token&padding=".to_vec();
    body.resize(200 * 1024, b'a');
    std::fs::write(&form, &body).unwrap();
    let data = format!("@{}", form.display());
    let url = format!("{}/oauth2/userinfo", server.url);
    for _ in 0..5 {
        let answer = curl_h2(&[
            "--header",
            "Content-Type: application/x-www-form-urlencoded",
            "--data-binary",
            &data,
            &url,
        ]);
        assert!(
            answer == "401 2" || answer == "400 2",
            "status and HTTP version: {answer}"
        );
    }
    assert_no_panic(&server.stop());
}

/// Connections that send nothing at all are closed after the header timeout too.
#[test]
fn connections_that_send_nothing_are_closed() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(
        BINARY,
        &work.path().join("data"),
        &[
            ("TESSERA_MAX_CONNECTIONS", "20"),
            ("TESSERA_HEADER_READ_TIMEOUT_SECONDS", "2"),
            ("TESSERA_SHUTDOWN_GRACE_SECONDS", "1"),
        ],
    );
    let address = address(&server);
    // Fewer than the bound, so only a deadline can close them.
    let mut silent: Vec<TcpStream> = (0..5).map(|_| connect(address)).collect();
    for (i, stream) in silent.iter_mut().enumerate() {
        assert_closed_by_server(stream, &format!("silent connection {i}"));
    }
    assert_ready(address);
    assert_no_panic(&server.stop());
}

/// The HTTP/2 connection preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// As many idle connections as the bound (HTTP/2 ones that made no request, or
/// HTTP/1 ones that made one and keep the connection alive) do not lock new
/// clients out.
#[test]
fn idle_connections_filling_the_bound_do_not_lock_new_clients_out() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(
        BINARY,
        &work.path().join("data"),
        &[
            ("TESSERA_MAX_CONNECTIONS", "20"),
            ("TESSERA_HEADER_READ_TIMEOUT_SECONDS", "600"),
            ("TESSERA_SHUTDOWN_GRACE_SECONDS", "1"),
        ],
    );
    let address = address(&server);
    let http2: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = connect(address);
            stream.write_all(H2_PREFACE).unwrap();
            // The server's own SETTINGS frame: it has written to this connection.
            let mut frame = [0u8; 9];
            stream.read_exact(&mut frame).unwrap();
            assert_eq!(frame[3], 4, "a SETTINGS frame");
            stream
        })
        .collect();
    for _ in 0..3 {
        assert_ready(address);
    }
    let keep_alive: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = connect(address);
            stream
                .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            assert_eq!(read_response(&mut stream).status, 200);
            stream
        })
        .collect();
    for _ in 0..3 {
        assert_ready(address);
    }
    assert_no_panic(&server.stop());
    drop((http2, keep_alive));
}

/// A request whose body stalls does not hold its slot against a flood: it is
/// closed to make room like any half-sent request (else stalled uploads, cheap to
/// send, would pin every slot for the body deadline and lock everyone out), while
/// new clients keep being answered. (A request in a handler is never evicted: see
/// the unit test in `connections.rs`.)
#[test]
fn a_stalled_body_does_not_hold_its_slot_against_a_flood() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(
        BINARY,
        &work.path().join("data"),
        &[
            ("TESSERA_MAX_CONNECTIONS", "20"),
            ("TESSERA_HEADER_READ_TIMEOUT_SECONDS", "600"),
            ("TESSERA_BODY_READ_TIMEOUT_SECONDS", "600"),
            ("TESSERA_SHUTDOWN_GRACE_SECONDS", "1"),
        ],
    );
    let address = address(&server);
    let mut stalled: Vec<TcpStream> = (0..20).map(|_| slow_body(address)).collect();
    // Once a new connection is answered, the server has read the older heads.
    assert_ready(address);
    let flood: Vec<TcpStream> = (0..60).map(|_| half_sent(address)).collect();
    assert_ready(address);
    assert_ready(address);
    for stream in &mut stalled {
        assert_closed_by_server(stream, "a stalled upload");
    }
    assert_no_panic(&server.stop());
    drop(flood);
}

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

/// An HPACK header field, literal and never indexed (short names and values).
fn hpack_literal(name: &str, value: &str) -> Vec<u8> {
    let mut field = vec![0x10, name.len() as u8];
    field.extend(name.as_bytes());
    field.push(value.len() as u8);
    field.extend(value.as_bytes());
    field
}

/// One frame: type, flags, stream and payload.
fn read_h2_frame(stream: &mut TcpStream) -> std::io::Result<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head)?;
    let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload)?;
    Ok((head[3], head[4], id, payload))
}

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 1;

/// Over raw HTTP/2, POSTs a form declaring `declared` bytes and sends `sent` of
/// them; returns the response body once the server ended its side of the stream,
/// and the code of a RST_STREAM the server sent for it, if any.
fn h2_post_unfinished(address: SocketAddr, declared: usize, sent: usize) -> (String, Option<u32>) {
    let mut stream = connect(address);
    stream.write_all(H2_PREFACE).unwrap();
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", "/oauth2/userinfo"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", &declared.to_string()),
    ] {
        block.extend(hpack_literal(name, value));
    }
    // END_HEADERS.
    stream.write_all(&h2_frame(HEADERS, 4, 1, &block)).unwrap();
    let mut left = sent;
    while left > 0 {
        let n = left.min(16_384);
        stream
            .write_all(&h2_frame(DATA, 0, 1, &vec![b'a'; n]))
            .unwrap();
        left -= n;
    }
    let mut body = Vec::new();
    let mut ended = false;
    let mut reset = None;
    loop {
        let frame = if ended {
            // After the end of the response, only a reset may still come.
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            match read_h2_frame(&mut stream) {
                Ok(frame) => frame,
                Err(_) => break,
            }
        } else {
            read_h2_frame(&mut stream).expect("the response, before the server ends it")
        };
        match frame {
            (SETTINGS, flags, 0, _) if flags & 1 == 0 => {
                stream.write_all(&h2_frame(SETTINGS, 1, 0, &[])).unwrap();
            }
            (DATA, flags, 1, payload) => {
                body.extend(payload);
                ended |= flags & END_STREAM != 0;
            }
            (HEADERS, flags, 1, _) => ended |= flags & END_STREAM != 0,
            (RST_STREAM, _, 1, payload) => {
                reset = Some(u32::from_be_bytes(payload[..4].try_into().unwrap()));
                break;
            }
            (GOAWAY, ..) => break,
            _ => {}
        }
    }
    assert!(
        ended,
        "the server did not end its response (reset {reset:?}): {}",
        String::from_utf8_lossy(&body)
    );
    (String::from_utf8(body).unwrap(), reset)
}

/// Issue 11, item 13, when the server must answer before the body is complete
/// (too large, or too slow): an HTTP/2 client gets the whole answer, and the
/// stream is closed with NO_ERROR (RFC 9113, section 8.1), not cancelled, which
/// would make clients drop the answer.
#[test]
fn http2_clients_get_whole_answers_to_bodies_refused_early() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(
        BINARY,
        &work.path().join("data"),
        &[
            ("TESSERA_BODY_READ_TIMEOUT_SECONDS", "2"),
            ("TESSERA_SHUTDOWN_GRACE_SECONDS", "1"),
        ],
    );
    let address = address(&server);
    // Within the initial flow-control window of 65,535 bytes.
    let (body, reset) = h2_post_unfinished(address, 2_000_000, 3 * 16_384);
    assert!(body.contains("too large"), "{body}");
    assert!(matches!(reset, None | Some(0)), "reset with {reset:?}");
    let (body, reset) = h2_post_unfinished(address, 100, 10);
    assert!(body.contains("did not arrive in time"), "{body}");
    assert!(matches!(reset, None | Some(0)), "reset with {reset:?}");
    assert_no_panic(&server.stop());
}

/// Over HTTPS, connections that never start their TLS handshake: new clients are
/// answered during the flood, and every one of them is closed.
#[test]
fn over_https_stalled_handshakes_neither_silence_the_server_nor_stay_open() {
    let work = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_localhost(work.path());
    let server = Server::start_tls(
        BINARY,
        &work.path().join("data"),
        (&cert, &key),
        &[
            ("TESSERA_MAX_CONNECTIONS", "20"),
            ("TESSERA_HEADER_READ_TIMEOUT_SECONDS", "2"),
            ("TESSERA_SHUTDOWN_GRACE_SECONDS", "1"),
        ],
    );
    let address: SocketAddr = server
        .url
        .strip_prefix("https://")
        .unwrap()
        .parse()
        .unwrap();
    let mut flood: Vec<TcpStream> = (0..60).map(|_| connect(address)).collect();
    let readyz = format!("{}/readyz", server.url);
    for _ in 0..3 {
        let output = run_ok(
            Command::new("curl")
                .args(["--silent", "--show-error", "--insecure", "--max-time", "60"])
                .args(["--output", "/dev/null", "--write-out", "%{http_code}"])
                .arg(&readyz),
            "curl",
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout), "200");
    }
    for (i, stream) in flood.iter_mut().enumerate() {
        assert_closed_by_server(stream, &format!("stalled handshake {i}"));
    }
    assert_no_panic(&server.stop());
}

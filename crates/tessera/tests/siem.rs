//! The SIEM export through the real binary, against real receivers: Debian's
//! rsyslog (RFC 5425 syslog over TLS, one sink with OCSF JSON and one with CEF),
//! an HTTPS endpoint that checks each batch's signature, and an OTLP/HTTP
//! receiver that parses every request with the official OpenTelemetry protobuf
//! definitions (`e2e/siem_receiver.py`). The OTLP receiver is down at first:
//! its lag shows in `/metrics` and in the sink's status while the others
//! deliver, and once it is up it catches up. Every receiver ends with every
//! record of every stream from its sink's start, none missing; a password typed
//! at sign-in and the sinks' secrets appear in none. A receiver behind a
//! firewall that refuses one record gets every other one, and the sink counts
//! the one passed over. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, lines};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_testkit::server::free_port;
use tessera_testkit::{PostgresNode, Server, run_ok, venv_bin};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera");
const SECRET: &str = "batch-signing-secret-0123456789abcdef";
const AUTHORIZATION: &str = "Bearer otlp-collector-token-5d1e";
/// What the filtering receiver's firewall refuses.
const POISON: &str = "waf-poison";

/// A test CA and a server certificate it signed, for localhost and 127.0.0.1:
/// (CA, certificate, key), PEM files.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca = dir.join("ca.pem");
    let ca_key = dir.join("ca.key");
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let ext = dir.join("server.ext");
    run_ok(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=Tessera SIEM test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args([
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
            ])
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca),
        "openssl (the test CA)",
    );
    run_ok(
        Command::new("openssl")
            .args(["req", "-new", "-newkey", "rsa:2048", "-nodes"])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&csr),
        "openssl (the server's request)",
    );
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .args(["-CAcreateserial", "-extfile"])
            .arg(&ext)
            .arg("-out")
            .arg(&cert),
        "openssl (the server's certificate)",
    );
    (ca, cert, key)
}

/// Debian's rsyslogd in the foreground: TLS on `port`, every message written
/// to `out` as one JSON object per line.
fn rsyslog(dir: &Path, port: u16, ca: &Path, cert: &Path, key: &Path, out: &Path) -> Child {
    let work = dir.join("rsyslog-work");
    std::fs::create_dir_all(&work).unwrap();
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(
    workDirectory="{work}"
    maxMessageSize="256k"
    processInternalMessages="on"
    parser.escapeControlCharactersOnReceive="off"
    defaultNetstreamDriver="gtls"
    defaultNetstreamDriverCAFile="{ca}"
    defaultNetstreamDriverCertFile="{cert}"
    defaultNetstreamDriverKeyFile="{key}"
)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1"
       streamDriver.authMode="anon" gnutlsPriorityString="NORMAL")
template(name="line" type="list" option.jsonf="on") {{
    property(outname="hostname" name="hostname" format="jsonf")
    property(outname="appname" name="app-name" format="jsonf")
    property(outname="procid" name="procid" format="jsonf")
    property(outname="msgid" name="msgid" format="jsonf")
    property(outname="sd" name="structured-data" format="jsonf")
    property(outname="pri" name="pri" format="jsonf")
    property(outname="msg" name="msg" format="jsonf")
}}
ruleset(name="siem") {{ action(type="omfile" file="{out}" template="line") }}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="siem" discardTruncatedMsg="on")
*.* action(type="omfile" file="{work}/rsyslogd.log")
"#,
            work = work.display(),
            ca = ca.display(),
            cert = cert.display(),
            key = key.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/rsyslogd")
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslog.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("rsyslogd (Debian's rsyslog and rsyslog-gnutls; .ci/run installs them)");
    wait_for_port(port);
    child
}

/// The receiver of `e2e/siem_receiver.py` on `port` (HTTPS with `tls`).
fn receiver(port: u16, out: &Path, tls: Option<(&Path, &Path)>) -> Child {
    receiver_refusing(port, out, tls, None)
}

/// The same, refusing (403) any request whose body holds `refuse`.
fn receiver_refusing(
    port: u16,
    out: &Path,
    tls: Option<(&Path, &Path)>,
    refuse: Option<&str>,
) -> Child {
    let mut command = Command::new(venv_bin("python"));
    command
        .arg(tessera_testkit::server::e2e_dir().join("siem_receiver.py"))
        .args(["--port", &port.to_string(), "--secret", SECRET, "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some((cert, key)) = tls {
        command.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    if let Some(text) = refuse {
        command.args(["--refuse", text]);
    }
    let child = command.spawn().expect("the SIEM receiver");
    wait_for_port(port);
    child
}

fn wait_for_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a receiver got: (stream, number) of every record, with repeats.
fn received(path: &Path) -> Vec<(String, i64)> {
    lines(path)
        .iter()
        .map(|line| match line["via"].as_str() {
            Some("batch") => (
                line["event"]["metadata"]["log_name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                line["event"]["metadata"]["sequence"].as_i64().unwrap(),
            ),
            Some("otlp") => (
                line["attributes"]["tessera.stream"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                line["attributes"]["tessera.sequence"].as_i64().unwrap(),
            ),
            _ => {
                // rsyslog: the structured data names them.
                let sd = line["sd"].as_str().unwrap();
                let param = |name: &str| {
                    let start = sd.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    sd[start..].split('"').next().unwrap().to_string()
                };
                (param("stream"), param("seq").parse().unwrap())
            }
        })
        .collect()
}

/// What the SIEM test asks of the management API beyond `common::Api`.
trait SiemApi {
    fn stream_numbers(&self, sink: &Value, which: &str) -> BTreeMap<String, i64>;
    fn metrics(&self) -> String;
}

impl SiemApi for Api {
    /// A sink's numbers per stream, as its status says them (`head`,
    /// `delivered`).
    fn stream_numbers(&self, sink: &Value, which: &str) -> BTreeMap<String, i64> {
        let view = self.ok(
            reqwest::Method::GET,
            &format!("/siem/sinks/{}", sink["id"].as_str().unwrap()),
            None,
        );
        view["status"]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["stream"].as_str().unwrap().to_string(),
                    s[which].as_i64().unwrap(),
                )
            })
            .collect()
    }

    fn metrics(&self) -> String {
        self.runtime.block_on(async {
            self.http
                .get(format!("{}/metrics", self.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    }
}

/// The gauge's value for a sink and stream in a `/metrics` text.
fn lag_in(metrics: &str, gauge: &str, sink: &str, stream: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(gauge)?;
        (rest.contains(&format!("sink=\"{sink}\""))
            && rest.contains(&format!("stream=\"{stream}\"")))
        .then(|| rest.rsplit(' ').next()?.parse().ok())
        .flatten()
    })
}

fn wait_until(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < until, "waited {seconds} s for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until a receiver holds exactly `want`; on a timeout, says what is
/// missing, what is extra and what the sink's status says.
fn wait_for_records(
    what: &str,
    seconds: u64,
    path: &Path,
    want: &BTreeSet<(String, i64)>,
    status: impl Fn() -> Value,
) {
    let until = Instant::now() + Duration::from_secs(seconds);
    loop {
        let got: BTreeSet<_> = received(path).into_iter().collect();
        if &got == want {
            return;
        }
        if Instant::now() >= until {
            let missing: Vec<_> = want.difference(&got).collect();
            let extra: Vec<_> = got.difference(want).collect();
            panic!(
                "waited {seconds} s for {what}: missing {missing:?}, extra {extra:?}; the sink: {}",
                status()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn scenario(postgres: bool) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (ca, cert, key) = certificates(dir);
    let syslog_port = free_port();
    let https_port = free_port();
    let otlp_port = free_port();
    let syslog_out = dir.join("syslog.jsonl");
    let https_out = dir.join("https.jsonl");
    let otlp_out = dir.join("otlp.jsonl");
    let mut rsyslogd = rsyslog(dir, syslog_port, &ca, &cert, &key, &syslog_out);
    let mut https = receiver(https_port, &https_out, Some((&cert, &key)));
    let filtered_port = free_port();
    let filtered_out = dir.join("filtered.jsonl");
    let mut filtered = receiver_refusing(
        filtered_port,
        &filtered_out,
        Some((&cert, &key)),
        Some(POISON),
    );

    // Every sign-in from loopback is an anonymizer's: each gives a detection.
    let lists = dir.join("anonymous.txt");
    std::fs::write(&lists, "127.0.0.1 tor exit (test)\n").unwrap();
    let lists = lists.to_string_lossy().to_string();
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let node = postgres.then(|| PostgresNode::new(&public_url));
    let mut env = vec![
        ("TESSERA_RISK_ANONYMOUS_IP_LIST", lists.as_str()),
        // The receivers listen on this machine.
        ("TESSERA_SIEM_PRIVATE_RECEIVERS", "true"),
    ];
    if let Some(node) = &node {
        env.extend(node.env());
    }
    let server = Server::start_at(
        BINARY,
        &format!("127.0.0.1:{port}"),
        &dir.join("data"),
        &env,
    );
    let api = Api {
        base: server.url.clone(),
        token: server.token.clone().unwrap(),
        http: reqwest::Client::new(),
        runtime: tokio::runtime::Runtime::new().unwrap(),
    };
    use reqwest::Method;

    // Bad sinks are refused and change nothing.
    for (body, field) in [
        (
            json!({ "type": "syslog", "displayName": "x", "host": "a b" }),
            "host",
        ),
        (
            json!({ "type": "https", "displayName": "x", "url": "https://siem.example.com/" }),
            "secret",
        ),
        (
            json!({ "type": "https", "displayName": "x", "url": "http://siem.example.com/", "secret": SECRET }),
            "url",
        ),
        (
            json!({ "type": "otlp", "displayName": "x", "url": "http://127.0.0.1:1/v1/logs", "caCertificate": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n" }),
            "caCertificate",
        ),
        (json!({ "type": "smtp", "displayName": "x" }), "type"),
        (
            json!({ "type": "otlp", "displayName": "x", "url": "http://127.0.0.1:1/", "extra": 1 }),
            "body",
        ),
    ] {
        let (status, problem) = api.call(Method::POST, "/siem/sinks", Some(body.clone()));
        assert_eq!(status, 400, "{body}: {problem}");
        assert!(problem.to_string().contains(field), "{field}: {problem}");
    }
    assert_eq!(api.ok(Method::GET, "/siem/sinks", None)["value"], json!([]));

    // The sinks: syslog (JSON and CEF) and HTTPS through the CLI and the API;
    // the OTLP one while its receiver is down.
    let ca_text = std::fs::read_to_string(&ca).unwrap();
    let port_text = syslog_port.to_string();
    let json_sink = server.cli(
        BINARY,
        &[
            "siem",
            "add",
            "--type",
            "syslog",
            "--name",
            "SOC syslog",
            "--host",
            "127.0.0.1",
            "--port",
            &port_text,
            "--server-name",
            "localhost",
            "--ca-file",
            ca.to_str().unwrap(),
        ],
    );
    assert_eq!(json_sink["format"], "json");
    let cef_sink = api.ok(
        Method::POST,
        "/siem/sinks",
        Some(json!({
            "type": "syslog", "displayName": "SOC CEF", "host": "localhost", "port": syslog_port,
            "format": "cef", "caCertificate": ca_text,
        })),
    );
    let https_sink = api.ok(
        Method::POST,
        "/siem/sinks",
        Some(json!({
            "type": "https", "displayName": "Lake", "url": format!("https://localhost:{https_port}/batches"),
            "secret": SECRET, "caCertificate": ca_text,
        })),
    );
    assert_eq!(https_sink["hasSecret"], true);
    assert!(
        !https_sink.to_string().contains(SECRET),
        "a secret is never shown"
    );
    let authorization_file = dir.join("authorization");
    std::fs::write(&authorization_file, format!("{AUTHORIZATION}\n")).unwrap();
    let otlp_sink = server.cli(
        BINARY,
        &[
            "siem",
            "add",
            "--type",
            "otlp",
            "--name",
            "Collector",
            "--url",
            &format!("http://127.0.0.1:{otlp_port}/v1/logs"),
            "--authorization-file",
            authorization_file.to_str().unwrap(),
        ],
    );
    let (status, _) = api.call(
        Method::POST,
        "/siem/sinks",
        Some(json!({ "type": "otlp", "displayName": "collector", "url": "http://127.0.0.1:9/v1/logs" })),
    );
    assert_eq!(status, 409, "names are unique, whatever their case");
    let filtered_sink = api.ok(
        Method::POST,
        "/siem/sinks",
        Some(json!({
            "type": "https", "displayName": "Filtered",
            "url": format!("https://localhost:{filtered_port}/batches"),
            "secret": SECRET, "caCertificate": ca_text, "authorization": AUTHORIZATION,
        })),
    );
    assert_eq!(filtered_sink["hasAuthorization"], true);
    let sinks = [
        &json_sink,
        &cef_sink,
        &https_sink,
        &otlp_sink,
        &filtered_sink,
    ];
    let collector_id = otlp_sink["id"].as_str().unwrap();
    let lake_id = https_sink["id"].as_str().unwrap();
    // Where each sink starts: what it must deliver is everything after.
    let starts: Vec<BTreeMap<String, i64>> = sinks
        .iter()
        .map(|sink| api.stream_numbers(sink, "start"))
        .collect();

    // Activity: users (audit events), sign-ins that succeed and fail (the
    // sign-in log), each from an anonymizer (detections).
    api.ok(
        Method::PATCH,
        "/policies/identitySecurityDefaultsEnforcementPolicy",
        Some(json!({ "isEnabled": false })),
    );
    let mut passwords = Vec::new();
    for i in 0..3 {
        let user = api.ok(
            Method::POST,
            "/users",
            Some(json!({ "userPrincipalName": format!("siem{i}@tessera.local"), "displayName": format!("Siem {i}") })),
        );
        let reset = api.ok(
            Method::POST,
            &format!(
                "/users/{}/authentication/resetPassword",
                user["id"].as_str().unwrap()
            ),
            Some(json!({})),
        );
        passwords.push(reset["newPassword"].as_str().unwrap().to_string());
    }
    for (i, password) in passwords.iter().enumerate() {
        let upn = format!("siem{i}@tessera.local");
        let (status, _) = api
            .runtime
            .block_on(common::pages::password_sign_in(&api.base, &upn, password));
        assert_eq!(status, 303, "{upn} signs in");
        let (status, _) = api.runtime.block_on(common::pages::password_sign_in(
            &api.base,
            &upn,
            "Not-the-password-7e1!",
        ));
        assert_ne!(status, 303, "a wrong password does not sign in");
    }
    // A name the filtering receiver's firewall refuses.
    let (status, _) = api.runtime.block_on(common::pages::password_sign_in(
        &api.base,
        &format!("{POISON}@tessera.local"),
        "Not-the-password-7e1!",
    ));
    assert_ne!(status, 303);

    // The three live sinks deliver while the collector is down.
    let heads = || api.stream_numbers(&otlp_sink, "head");
    let expected =
        |start: &BTreeMap<String, i64>, heads: &BTreeMap<String, i64>| -> BTreeSet<(String, i64)> {
            heads
                .iter()
                .flat_map(|(stream, head)| {
                    (start[stream] + 1..=*head).map(move |n| (stream.clone(), n))
                })
                .collect()
        };
    let final_heads = heads();
    for (stream, least) in [("signIns", 4), ("auditLogs", 6), ("riskDetections", 3)] {
        assert!(
            final_heads[stream] - starts[3][stream] >= least,
            "{stream}: {final_heads:?} from {:?}",
            starts[3]
        );
    }
    let syslog_expected: BTreeSet<(String, i64)> = expected(&starts[0], &final_heads)
        .union(&expected(&starts[1], &final_heads))
        .cloned()
        .collect();
    wait_until("rsyslog to hold both syslog sinks' records", 60, || {
        received(&syslog_out).len()
            >= expected(&starts[0], &final_heads).len() + expected(&starts[1], &final_heads).len()
    });
    wait_for_records(
        "the HTTPS endpoint to hold every record",
        90,
        &https_out,
        &expected(&starts[2], &final_heads),
        || api.ok(Method::GET, &format!("/siem/sinks/{lake_id}"), None),
    );
    let metrics = api.metrics();
    for stream in ["signIns", "auditLogs", "riskDetections"] {
        let waiting = lag_in(&metrics, "tessera_siem_lag_records", collector_id, stream)
            .unwrap_or_else(|| panic!("no lag for {stream} in {metrics}"));
        assert!(waiting > 0.0, "{stream}: {metrics}");
        assert_eq!(
            lag_in(&metrics, "tessera_siem_lag_records", lake_id, stream),
            Some(0.0),
            "{metrics}"
        );
    }
    let collector = api.ok(
        Method::GET,
        &format!("/siem/sinks/{}", otlp_sink["id"].as_str().unwrap()),
        None,
    );
    assert!(
        collector["status"]["failingSince"].is_string(),
        "{collector}"
    );
    assert!(collector["status"]["lastError"].is_string(), "{collector}");
    let listed = server.cli(BINARY, &["siem", "list"]);
    assert_eq!(listed["value"].as_array().unwrap().len(), 5);

    // The collector comes up: it catches up, and the lag goes to nothing.
    let mut otlp = receiver(otlp_port, &otlp_out, None);
    wait_for_records(
        "the collector to catch up",
        90,
        &otlp_out,
        &expected(&starts[3], &final_heads),
        || api.ok(Method::GET, &format!("/siem/sinks/{collector_id}"), None),
    );
    wait_until("the lag to clear in /metrics", 30, || {
        let metrics = api.metrics();
        ["signIns", "auditLogs", "riskDetections"]
            .iter()
            .all(|s| lag_in(&metrics, "tessera_siem_lag_records", collector_id, s) == Some(0.0))
    });
    // The firewall refused one record: every other arrived, the one is counted.
    let filtered_id = filtered_sink["id"].as_str().unwrap();
    let filtered_expected = expected(&starts[4], &final_heads);
    let mut refused = 0;
    wait_until(
        "the filtered receiver to hold every other record",
        60,
        || {
            let view = api.ok(Method::GET, &format!("/siem/sinks/{filtered_id}"), None);
            refused = view["status"]["recordsRefused"].as_i64().unwrap();
            let got: BTreeSet<_> = received(&filtered_out).into_iter().collect();
            refused > 0 && got.len() as i64 + refused == filtered_expected.len() as i64
        },
    );
    let got: BTreeSet<_> = received(&filtered_out).into_iter().collect();
    assert!(got.is_subset(&filtered_expected));
    assert!(
        !std::fs::read_to_string(&filtered_out)
            .unwrap()
            .contains(POISON)
    );
    let collector = api.ok(
        Method::GET,
        &format!("/siem/sinks/{}", otlp_sink["id"].as_str().unwrap()),
        None,
    );
    assert!(collector["status"]["failingSince"].is_null(), "{collector}");
    assert!(
        collector["status"]["lastDeliveryDateTime"].is_string(),
        "{collector}"
    );

    // Nothing missing anywhere; repeats only as at-least-once allows (none here).
    let syslog_got = received(&syslog_out);
    let syslog_set: BTreeSet<(String, i64)> = syslog_got.iter().cloned().collect();
    assert_eq!(syslog_set, syslog_expected);
    for (name, path) in [("https", &https_out), ("otlp", &otlp_out)] {
        let got = received(path);
        let set: BTreeSet<_> = got.iter().cloned().collect();
        assert_eq!(got.len(), set.len(), "{name}: a record arrived twice");
    }

    // What each format says.
    let syslog_lines = lines(&syslog_out);
    let json_line = syslog_lines
        .iter()
        .find(|l| {
            l["msgid"] == "signIns" && l["msg"].as_str().unwrap().trim_start().starts_with('{')
        })
        .expect("a sign-in as OCSF JSON over syslog");
    let event: Value = serde_json::from_str(json_line["msg"].as_str().unwrap().trim()).unwrap();
    assert_eq!(event["class_uid"], 3002);
    assert_eq!(json_line["appname"], "tessera");
    assert!(
        json_line["sd"]
            .as_str()
            .unwrap()
            .starts_with("[tessera@32473 tenant=\""),
        "{json_line}"
    );
    let cef_line = syslog_lines
        .iter()
        .find(|l| {
            l["msg"]
                .as_str()
                .unwrap()
                .trim_start()
                .starts_with("CEF:0|Tessera|Tessera|")
        })
        .expect("a CEF message");
    assert!(
        cef_line["msg"]
            .as_str()
            .unwrap()
            .contains("cs1Label=tenantId"),
        "{cef_line}"
    );
    let batch = lines(&https_out);
    let detection = batch
        .iter()
        .find(|l| l["event"]["class_uid"] == 2004)
        .expect("a detection in a batch");
    assert_eq!(
        detection["event"]["finding_info"]["title"],
        "anonymizedIPAddress"
    );
    assert!(
        detection["batch"]
            .as_str()
            .unwrap()
            .starts_with(https_sink["id"].as_str().unwrap())
    );
    let audit = batch
        .iter()
        .find(|l| l["event"]["api"]["operation"] == "user.create")
        .expect("a user's creation in a batch");
    assert_eq!(audit["event"]["class_uid"], 6003);
    let otlp_lines = lines(&otlp_out);
    assert_eq!(otlp_lines[0]["resource"]["service.name"], "tessera");
    let body: Value = serde_json::from_str(otlp_lines[0]["body"].as_str().unwrap()).unwrap();
    assert!(body["class_uid"].is_i64(), "{body}");

    // No secret in anything any receiver got.
    for path in [&syslog_out, &https_out, &otlp_out, &filtered_out] {
        let text = std::fs::read_to_string(path).unwrap();
        for secret in passwords.iter().map(String::as_str).chain([
            SECRET,
            AUTHORIZATION,
            "Not-the-password-7e1!",
        ]) {
            assert!(!text.contains(secret), "{} holds a secret", path.display());
        }
    }

    // A disabled sink stops; a removed one is gone with its cursors.
    let changed = server.cli(BINARY, &["siem", "update", "Lake", "--disable"]);
    assert_eq!(changed["enabled"], false);
    server.cli(BINARY, &["siem", "remove", "SOC CEF"]);
    let (status, _) = api.call(
        Method::GET,
        &format!("/siem/sinks/{}", cef_sink["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(status, 404);
    let audit = api.ok(
        Method::GET,
        "/auditLogs/directoryAudits?action=siemSink.create",
        None,
    );
    assert!(
        !audit.to_string().contains(SECRET),
        "the audit trail holds no secret"
    );

    server.stop();
    for child in [&mut rsyslogd, &mut https, &mut otlp, &mut filtered] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn every_sink_gets_every_record_and_a_sink_that_was_down_catches_up() {
    scenario(false);
}

#[test]
fn every_sink_gets_every_record_on_postgres() {
    scenario(true);
}

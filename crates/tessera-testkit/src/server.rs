//! Starting and stopping the real `tessera` binary for black-box tests, and the
//! Node scripts in `e2e/` that drive it. The binary is the caller's
//! `env!("CARGO_BIN_EXE_tessera")`, which Cargo sets for the `tessera` crate's tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::databases::PostgresDatabase;

pub struct Server {
    child: Child,
    /// The address it listens on, as a URL (for tests that talk to this node).
    pub url: String,
    /// The issuer and public URL it prints for clients.
    pub issuer: String,
    /// The break-glass administrator's first Temporary Access Pass, when the
    /// server bootstrapped a tenant.
    pub console_pass: Option<String>,
    /// The break-glass administrator's user principal name, likewise.
    pub admin: Option<String>,
    /// The bootstrap token, when this server bootstrapped the store.
    pub token: Option<String>,
    /// Everything it wrote to stdout and stderr so far.
    output: Arc<Mutex<String>>,
    /// The threads that read stdout and stderr; they end when the server exits.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `binary serve` on a free loopback port and waits until it listens.
    pub fn start(binary: &str, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_at(binary, "127.0.0.1:0", data_dir, env)
    }

    /// Starts `binary serve` over HTTPS with this certificate and key (PEM files), and
    /// `env` besides.
    pub fn start_tls(
        binary: &str,
        data_dir: &Path,
        (cert, key): (&Path, &Path),
        env: &[(&str, &str)],
    ) -> Server {
        let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
        let mut all = vec![("TESSERA_TLS__CERT", &*cert), ("TESSERA_TLS__KEY", &*key)];
        all.extend_from_slice(env);
        Server::start(binary, data_dir, &all)
    }

    /// Starts `binary serve` listening on `listen` and waits until it listens.
    /// (The child is killed and reaped in `Drop` if start-up fails.)
    pub fn start_at(binary: &str, listen: &str, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_under(binary, &[], listen, data_dir, env)
    }

    /// Starts `binary serve` through `wrapper` (a program that runs its arguments
    /// in its own place, such as `prlimit --nofile=256:256`), so the server keeps
    /// the wrapper's process id.
    #[allow(clippy::zombie_processes)]
    pub fn start_under(
        binary: &str,
        wrapper: &[&str],
        listen: &str,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> Server {
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .env("TESSERA_LOG__LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start tessera serve");
        let output = Arc::new(Mutex::new(String::new()));
        // Keep stderr visible in the test's output and on record for `output`.
        let stderr = child.stderr.take().unwrap();
        let record = output.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let mut record = record.lock().unwrap();
                record.push_str(&line);
                record.push('\n');
            }
        });
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut token = None;
        let mut console_pass = None;
        let mut admin = None;
        let mut pass_follows = false;
        let mut issuer = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "tessera serve did not start listening"
            );
            let line = lines.next().expect("tessera serve exited early").unwrap();
            {
                let mut record = output.lock().unwrap();
                record.push_str(&line);
                record.push('\n');
            }
            if line.trim_start().starts_with("tsr_pat_") {
                token = Some(line.trim().to_string());
            }
            if pass_follows {
                console_pass = Some(line.trim().to_string());
            }
            pass_follows = line.starts_with("Temporary Access Pass for the console");
            if let Some(upn) = line.strip_prefix("Break-glass Global Administrator: ") {
                admin = Some(upn.trim().to_string());
            }
            if let Some((_, url)) = line.split_once("point clients and browsers here): ") {
                issuer = Some(url.trim().to_string());
            }
            if let Some(address) = line.strip_prefix("Listening on ") {
                let url = address.trim().to_string();
                let issuer = issuer.expect("the issuer is printed before `Listening on`");
                // Keep draining stdout so the server never blocks on a full pipe.
                let record = output.clone();
                let stdout_reader = std::thread::spawn(move || {
                    for line in lines.map_while(Result::ok) {
                        let mut record = record.lock().unwrap();
                        record.push_str(&line);
                        record.push('\n');
                    }
                });
                return Server {
                    child,
                    url,
                    issuer,
                    token,
                    console_pass,
                    admin,
                    output,
                    readers: vec![stderr_reader, stdout_reader],
                };
            }
        }
    }

    /// What the server wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Runs the CLI (`binary`) against this server as its bootstrap
    /// administrator, with JSON output and a settings directory of its own.
    pub fn run_cli(&self, binary: &str, args: &[&str]) -> std::process::Output {
        let port = self.url.rsplit(':').next().unwrap_or("0");
        Command::new(binary)
            .args(args)
            .args(["--output", "json"])
            .env("TESSERA_SERVER", &self.url)
            .env("TESSERA_TOKEN", self.token.as_deref().unwrap_or_default())
            .env(
                "TESSERA_CONFIG_DIR",
                std::env::temp_dir().join(format!("tessera-test-cli-{port}")),
            )
            .output()
            .expect("run tessera")
    }

    /// Runs the CLI, which must succeed; its JSON output (`null` when it printed
    /// nothing). A failure shows what the CLI and the server said.
    pub fn cli(&self, binary: &str, args: &[&str]) -> serde_json::Value {
        let output = self.run_cli(binary, args);
        assert!(
            output.status.success(),
            "tessera {args:?} failed:\n{}{}\n--- server ---\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.output()
        );
        if output.stdout.is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Runs the CLI, which must fail; what it said.
    pub fn cli_fails(&self, binary: &str, args: &[&str]) -> String {
        let output = self.run_cli(binary, args);
        assert!(!output.status.success(), "tessera {args:?} succeeded");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// Stops the server with SIGTERM, waits for its graceful exit and returns all
    /// it wrote to stdout and stderr.
    pub fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "tessera serve exited with {status}");
                for reader in std::mem::take(&mut self.readers) {
                    let _ = reader.join();
                }
                return self.output();
            }
            assert!(Instant::now() < deadline, "tessera serve did not shut down");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A loopback port free now, for a node whose public URL must name its port
/// before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `tessera serve` needs to run on a fresh PostgreSQL database: the database
/// (dropped with this value), a sealing key file every node shares, and the public
/// URL every node names as its issuer (PostgreSQL requires one).
pub struct PostgresNode {
    database: PostgresDatabase,
    key: tempfile::NamedTempFile,
    public_url: String,
}

impl PostgresNode {
    pub fn new(public_url: &str) -> PostgresNode {
        let database = PostgresDatabase::create_blocking();
        let key = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key.path(), [7u8; 32]).unwrap();
        PostgresNode {
            database,
            key,
            public_url: public_url.to_string(),
        }
    }

    pub fn database_url(&self) -> &str {
        self.database.url()
    }

    /// The environment for `tessera serve`: database URL, key file, public URL.
    pub fn env(&self) -> [(&str, &str); 3] {
        [
            ("TESSERA_DATABASE_URL", self.database.url()),
            (
                "TESSERA_SECRETS_KEY_FILE",
                self.key.path().to_str().unwrap(),
            ),
            ("TESSERA_PUBLIC_URL", self.public_url.as_str()),
        ]
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1 (P-256, valid two days,
/// for server authentication), made with openssl in `dir`: the paths of the
/// certificate and of its key, both PEM.
pub fn self_signed_localhost(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    run_ok(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "extendedKeyUsage=serverAuth", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        "openssl (needed to make a test certificate)",
    );
    (cert, key)
}

/// Runs `command` to its end and checks that it succeeded, saying `what` failed
/// with its output otherwise.
pub fn run_ok(command: &mut Command, what: &str) -> std::process::Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A program of the test virtual environment `.ci/run` makes (`TESSERA_VENV`,
/// or `~/.cache/tessera/venv`): its `bin/<name>`, which must exist.
pub fn venv_bin(name: &str) -> PathBuf {
    let bin = std::env::var_os("TESSERA_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/tessera/venv"))
        })
        .expect("neither TESSERA_VENV nor HOME is set")
        .join("bin")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: .ci/run makes the test environment",
        bin.display()
    );
    bin
}

/// The `e2e/` folder of Node scripts.
pub fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e")
}

/// Fails, saying how to install it, when the npm package `name` is missing in `e2e/`.
pub fn require_npm_package(name: &str) {
    assert!(
        e2e_dir().join("node_modules").join(name).exists(),
        "run `npm ci --prefix e2e` first (.ci/run does): {name} is missing"
    );
}

/// Runs `node script` in `e2e/` with `env` added, and checks that it succeeded and
/// reported `ok <scenario>` for every scenario.
pub fn run_e2e_script(script: &str, env: &[(&str, &str)], scenarios: &[&str]) {
    let output = run_ok(
        Command::new("node")
            .arg(script)
            .current_dir(e2e_dir())
            .envs(env.iter().copied()),
        &format!("node {script} (Node.js 20 or later is needed)"),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    for scenario in scenarios {
        assert!(
            stdout.contains(&format!("ok {scenario}")),
            "{scenario} did not run:\n{stdout}"
        );
    }
}

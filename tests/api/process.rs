//! The built binary run as a process of its own, as operators run it: for
//! what only a real process shows (its command line, its logs, several
//! replicas at once, its own memory).

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME};

pub const BINARY: &str = env!("CARGO_BIN_EXE_customer-api");
/// How long a process may take to listen or to exit: start-up waits on
/// PostgreSQL locks, and the debug build runs beside every other test.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The binary with `DATABASE_URL` set (so that it never starts its private
/// development PostgreSQL), plain text logs at `info`, and a working
/// directory of its own (so that no `.env` applies).
pub fn command(database_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", database_url)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("ADMIN_USERNAME", ADMIN_USERNAME)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        // tracing-subscriber honours NO_COLOR by itself: without it, colour
        // is up to the binary's own terminal check, which is under test.
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// A running process of the binary, with its stderr collected by a thread.
/// Dropping it kills the process, so that a failed test leaves none behind.
pub struct Process {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command.spawn().expect("start the binary");
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits for the "listening on http://…/graphql" line and returns the
    /// server's base URL; fails if the process exits first.
    pub async fn base_url(&mut self) -> String {
        let started = Instant::now();
        loop {
            let log = self.stderr();
            if let Some(rest) = log.split("listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or_default();
                return url.trim_end_matches("/graphql").to_owned();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the server exited with {status} before listening:\n{log}");
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the server did not listen within {DEADLINE:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit (killing it past the deadline) and
    /// returns its status and everything it wrote to stderr.
    pub async fn finish(mut self) -> (ExitStatus, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "still running after {DEADLINE:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status, self.stderr())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

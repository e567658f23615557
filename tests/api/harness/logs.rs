//! One log capture for the whole test process: the application logs through
//! a global subscriber, so every test's lines land in the same buffer.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Every log line the application writes during the test run, at TRACE.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.get_or_init(Default::default).lock().unwrap()).into_owned()
}

/// The captured log lines written inside the request with this id.
pub fn request_log_lines(request_id: &str) -> Vec<String> {
    let marker = format!("request_id={request_id} ");
    captured_logs()
        .lines()
        .filter(|line| line.contains(&marker))
        .map(str::to_owned)
        .collect()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn init_log_capture() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let buffer = LOGS.get_or_init(Default::default).clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("customer_api=trace,async_graphql=trace")
            .with_ansi(false)
            .with_writer(move || LogWriter(buffer.clone()))
            .try_init();
    });
}

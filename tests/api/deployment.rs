//! What the container image and the manifests in `deploy/` rely on: the
//! binary's own probe command, which is the image's health check (the
//! runtime image carries no HTTP client).

use crate::harness::TestDb;
use crate::process::{BINARY, Process, command};

/// Runs `customer-api probe [path]` against the server at `address`.
fn probe(address: &str, path: Option<&str>) -> std::process::Output {
    let mut probe = std::process::Command::new(BINARY);
    probe
        .arg("probe")
        .args(path)
        .env("LISTEN_ADDR", address)
        .env_remove("METRICS_LISTEN_ADDR")
        .env("DATABASE_URL", "postgres://unused@127.0.0.1:1/unused")
        .current_dir(std::env::temp_dir());
    probe.output().expect("run the probe")
}

#[tokio::test]
async fn the_probe_command_is_a_health_check_that_needs_no_http_client() {
    let db = TestDb::create().await;
    let mut server = Process::spawn(command(&db.url(), &[]));
    let base = server.base_url().await;
    let address = base.trim_start_matches("http://").to_owned();
    // Listening on every interface, as in a container: probed on loopback.
    let port = address.rsplit(':').next().unwrap();
    let wildcard = format!("0.0.0.0:{port}");

    for (target, path) in [
        (&address, None),
        (&wildcard, None),
        (&address, Some("/healthz")),
    ] {
        let output = probe(target, path);
        assert!(
            output.status.success(),
            "probe {target} {path:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let missing = probe(&address, Some("/no-such-probe"));
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    // Nothing listening (port 1 is never served here): a failure, not a hang.
    let gone = probe("127.0.0.1:1", None);
    assert!(!gone.status.success());
}

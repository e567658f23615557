//! What a server leaves in the data directory, read without asking it:
//! `postmaster.pid` (its process id and port), the lock files of a server
//! that was killed, and the log that says why a start failed.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::DevDbError;

const PID_FILE: &str = "postmaster.pid";

/// Whether `postmaster.pid` names a server that was killed but not yet
/// reaped. pg_ctl and the postmaster take a zombie for a running server
/// (`kill(pid, 0)` succeeds); it lasts until init reaps it, which can be
/// seconds, or forever in a container whose first process never reaps.
pub(crate) fn pid_file_names_a_zombie(data_dir: &Path) -> bool {
    lock_file_names_a_zombie(&data_dir.join(PID_FILE))
}

/// Removes the lock files (`postmaster.pid`, and the socket's
/// `.s.PGSQL.<port>.lock` beside it) of a killed server that is still a
/// zombie: the new postmaster would refuse to start beside them. A zombie
/// holds nothing; server processes that outlived it still hold the
/// shared memory, which the postmaster checks for itself.
pub(crate) fn remove_zombie_lock_files(data_dir: &Path) {
    let socket_locks = fs::read_dir(data_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|name| name.starts_with(".s.PGSQL.") && name.ends_with(".lock"))
        });
    for lock in std::iter::once(data_dir.join(PID_FILE)).chain(socket_locks) {
        if lock_file_names_a_zombie(&lock) {
            tracing::info!(lock = %lock.display(), "removing a lock file of a killed server");
            let _ = fs::remove_file(&lock);
        }
    }
}

/// The port of the server running in `data_dir`.
pub(crate) fn read_port(data_dir: &Path) -> Result<u16, DevDbError> {
    let path = data_dir.join(PID_FILE);
    let text = fs::read_to_string(&path).map_err(|source| DevDbError::Io {
        action: "cannot read",
        path: path.clone(),
        source,
    })?;
    pid_file_port(&text).ok_or_else(|| DevDbError::Io {
        action: "found no port in",
        path,
        source: io::Error::from(io::ErrorKind::InvalidData),
    })
}

/// PostgreSQL's lock files start with the owner's process id.
fn lock_file_names_a_zombie(lock: &Path) -> bool {
    fs::read_to_string(lock)
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse().ok())
        .is_some_and(is_zombie)
}

#[cfg(target_os = "linux")]
fn is_zombie(pid: u32) -> bool {
    // The state follows the command name, which is in parentheses and may
    // itself contain spaces and parentheses.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, after_name) = stat.rsplit_once(')')?;
            after_name
                .split_whitespace()
                .next()
                .map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// Elsewhere (macOS) launchd reaps at once, so zombies are not worth a check.
#[cfg(not(target_os = "linux"))]
fn is_zombie(_pid: u32) -> bool {
    false
}

/// The port in `postmaster.pid`, whose fourth line it is.
fn pid_file_port(text: &str) -> Option<u16> {
    text.lines().nth(3)?.trim().parse().ok()
}

/// The last lines the server logged since `from` (its size before this start).
pub(crate) fn read_log_tail(log: &Path, from: u64) -> String {
    let Ok(mut file) = File::open(log) else {
        return String::new();
    };
    let length = file.metadata().map_or(0, |m| m.len());
    let from = if from > length { 0 } else { from };
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StartFailure {
    PortTaken,
    PreviousServerExiting,
    Other,
}

/// What the log says about a failed start: whether trying again may help.
pub(crate) fn classify_start_failure(log_tail: &str) -> StartFailure {
    if log_tail.contains("could not create any TCP/IP sockets")
        || log_tail.contains("Address already in use")
    {
        StartFailure::PortTaken
    } else if log_tail.contains("pre-existing shared memory block")
        || (log_tail.contains("lock file \"") && log_tail.contains("\" already exists"))
    {
        StartFailure::PreviousServerExiting
    } else {
        StartFailure::Other
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn the_port_is_read_from_postmaster_pid() {
        let pid_file = "29350\n/x/.pgdata\n1795760947\n5499\n/x/.pgdata\n127.0.0.1\n  10387574         9\nready   \n";
        assert_eq!(pid_file_port(pid_file), Some(5499));
        assert_eq!(pid_file_port("29350\n/x\n"), None);
    }

    #[test]
    fn start_failures_are_told_apart_by_the_log() {
        let port_taken = "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use\n\
                          FATAL:  could not create any TCP/IP sockets";
        assert_eq!(classify_start_failure(port_taken), StartFailure::PortTaken);
        let exiting =
            "FATAL:  pre-existing shared memory block (key 5432001, ID 3) is still in use";
        assert_eq!(
            classify_start_failure(exiting),
            StartFailure::PreviousServerExiting
        );
        let socket_lock = "FATAL:  lock file \"/p/.pgdata/.s.PGSQL.5433.lock\" already exists";
        assert_eq!(
            classify_start_failure(socket_lock),
            StartFailure::PreviousServerExiting
        );
        assert_eq!(
            classify_start_failure("FATAL:  data directory has invalid permissions"),
            StartFailure::Other
        );
    }

    #[test]
    fn the_log_tail_starts_at_this_start() {
        let dir = std::env::temp_dir().join(format!("devdb-log-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("server.log");
        fs::write(&log, "old run\n").unwrap();
        let from = fs::metadata(&log).unwrap().len();
        fs::write(&log, "old run\nnew line 1\nnew line 2\n").unwrap();
        assert_eq!(read_log_tail(&log, from), "new line 1\nnew line 2");
        // A log rotated meanwhile is read from its start.
        assert_eq!(
            read_log_tail(&log, 10_000),
            "old run\nnew line 1\nnew line 2"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_killed_unreaped_child_is_a_zombie() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        assert!(!is_zombie(child.id()));
        child.kill().unwrap();
        // Not waited for yet: exited but unreaped.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_zombie(child.id()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(is_zombie(child.id()));
        child.wait().unwrap();
        assert!(!is_zombie(child.id()), "reaped: gone");
    }
}

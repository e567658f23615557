//! Running PostgreSQL's own tools on the cluster: `initdb` once, then
//! `pg_ctl status`, `start` and `stop`, always as the account from `account`
//! and with options that keep the server on 127.0.0.1.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::account::RunAs;
use crate::binaries::Binaries;
use crate::error::DevDbError;
use crate::postmaster::{self, StartFailure};

/// The database role the cluster is created with, as on a packaged server.
pub(crate) const SUPERUSER: &str = "postgres";
const SERVER_LOG: &str = "server.log";
/// The log is appended to on every start; beyond this it is moved aside once.
const LOG_ROTATE_BYTES: u64 = 16 << 20;
/// Starts retried after a taken port or a previous server still exiting.
const START_ATTEMPTS: u32 = 5;
/// `sun_path` is 108 bytes on Linux and 104 on macOS, terminating NUL included.
const MAX_SOCKET_PATH: usize = 103;

/// The cluster in `data_dir` as `initdb` and `pg_ctl` see it, run as `run_as`.
#[derive(Clone, Debug)]
pub(crate) struct Server {
    pub(crate) bins: Binaries,
    pub(crate) run_as: RunAs,
    pub(crate) data_dir: PathBuf,
    /// The longest wait for `pg_ctl start`/`stop`, and for the locks.
    pub(crate) timeout: Duration,
}

impl Server {
    pub(crate) fn log_file(&self) -> PathBuf {
        self.data_dir.join(SERVER_LOG)
    }

    fn command(&self, program: &str) -> Command {
        self.run_as.command(&self.bins.dir.join(program))
    }

    fn timeout_seconds(&self) -> String {
        self.timeout.as_secs().max(1).to_string()
    }

    fn output(&self, mut command: Command, program: &'static str) -> Result<Output, DevDbError> {
        command.output().map_err(|source| DevDbError::Io {
            action: "cannot run",
            path: self.bins.dir.join(program),
            source,
        })
    }

    pub(crate) fn initdb(&self) -> Result<(), DevDbError> {
        // C.UTF-8 gives lower() and case-insensitive usernames all of Unicode,
        // as on a packaged server here; plain C (ASCII only) is the fallback
        // for systems without it.
        let locales = ["C.UTF-8", "C"];
        for (index, locale) in locales.iter().enumerate() {
            let mut command = self.command("initdb");
            command
                .arg("--pgdata")
                .arg(&self.data_dir)
                .args(["--username", SUPERUSER])
                .args(["--auth-local=trust", "--auth-host=trust"])
                .args(["--encoding=UTF8", &format!("--locale={locale}")]);
            let output = self.output(command, "initdb")?;
            if output.status.success() {
                return Ok(());
            }
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            if stderr.contains("invalid locale") && index + 1 < locales.len() {
                continue;
            }
            return Err(DevDbError::InitDb {
                data_dir: self.data_dir.clone(),
                status: output.status.to_string(),
                hint: self.run_as.permission_hint(&stderr, &self.data_dir),
                stderr,
            });
        }
        unreachable!("the last locale returns")
    }

    pub(crate) fn is_running(&self) -> Result<bool, DevDbError> {
        let mut command = self.command("pg_ctl");
        command.arg("status").arg("--pgdata").arg(&self.data_dir);
        let output = self.output(command, "pg_ctl")?;
        // pg_ctl status: 0 running, 3 not running (a stale postmaster.pid
        // included), 4 no accessible data directory.
        match output.status.code() {
            Some(0) => Ok(!postmaster::pid_file_names_a_zombie(&self.data_dir)),
            Some(3) => Ok(false),
            _ => Err(self.command_error("pg_ctl status", &output)),
        }
    }

    /// The port of the running server, which may have been started on
    /// another than the preferred one, by another process.
    pub(crate) fn running_port(&self) -> Result<u16, DevDbError> {
        postmaster::read_port(&self.data_dir)
    }

    pub(crate) fn rotate_log(&self) {
        let log = self.log_file();
        if fs::metadata(&log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
            let _ = fs::rename(&log, log.with_extension("log.1"));
        }
    }

    pub(crate) fn start(&self, preferred_port: u16) -> Result<u16, DevDbError> {
        let log = self.log_file();
        let port_error = |source| DevDbError::Io {
            action: "cannot find a free port on",
            path: PathBuf::from("127.0.0.1"),
            source,
        };
        let mut port = choose_port(preferred_port).map_err(port_error)?;
        postmaster::remove_zombie_lock_files(&self.data_dir);
        let mut attempt = 1;
        loop {
            let log_start = fs::metadata(&log).map_or(0, |m| m.len());
            let mut command = self.command("pg_ctl");
            command
                .arg("start")
                .arg("--pgdata")
                .arg(&self.data_dir)
                .arg("--log")
                .arg(&log)
                .args(["--wait", "--silent", "--timeout", &self.timeout_seconds()])
                .arg("-o")
                .arg(server_options(port, &self.data_dir));
            let output = self.output(command, "pg_ctl")?;
            if output.status.success() {
                return Ok(port);
            }
            let log_tail = postmaster::read_log_tail(&log, log_start);
            match postmaster::classify_start_failure(&log_tail) {
                StartFailure::PortTaken if attempt < START_ATTEMPTS => {
                    tracing::info!(port, "port taken meanwhile; starting on another one");
                    port = free_port().map_err(port_error)?;
                }
                // The previous server was killed and its processes are still
                // exiting (they notice within a second or so).
                StartFailure::PreviousServerExiting if attempt < START_ATTEMPTS => {
                    std::thread::sleep(Duration::from_secs(1));
                }
                _ => {
                    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
                    return Err(DevDbError::Start {
                        data_dir: self.data_dir.clone(),
                        hint: self
                            .run_as
                            .permission_hint(&format!("{stderr}\n{log_tail}"), &self.data_dir),
                        stderr,
                        log,
                        log_tail,
                    });
                }
            }
            attempt += 1;
        }
    }

    pub(crate) fn stop(&self) -> Result<(), DevDbError> {
        // Already stopped (by hand, or it crashed) is what we wanted; and
        // pg_ctl would wait for a zombie to obey its signal.
        if !self.is_running()? {
            return Ok(());
        }
        let mut command = self.command("pg_ctl");
        command
            .arg("stop")
            .arg("--pgdata")
            .arg(&self.data_dir)
            .args(["--mode", "fast", "--wait", "--silent"])
            .args(["--timeout", &self.timeout_seconds()]);
        let output = self.output(command, "pg_ctl")?;
        if output.status.success() || !self.is_running()? {
            return Ok(());
        }
        Err(self.command_error("pg_ctl stop", &output))
    }

    fn command_error(&self, program: &'static str, output: &Output) -> DevDbError {
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        DevDbError::Command {
            program,
            data_dir: self.data_dir.clone(),
            status: output.status.to_string(),
            stderr,
        }
    }
}

fn choose_port(preferred: u16) -> io::Result<u16> {
    if preferred != 0 && TcpListener::bind((Ipv4Addr::LOCALHOST, preferred)).is_ok() {
        return Ok(preferred);
    }
    free_port()
}

/// A port free now; the server may still lose it to someone else before it
/// binds, which `Server::start` notices in the log and retries.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The postgres options `pg_ctl -o` passes on. pg_ctl hands them to
/// `/bin/sh`, so each is single-quoted; the socket directory is a
/// comma-separated list to PostgreSQL, so it is double-quoted inside.
fn server_options(port: u16, socket_dir: &Path) -> String {
    let socket_dir = socket_dir.to_string_lossy();
    // A socket path that does not fit in `sun_path` would stop the server
    // from starting; TCP alone serves the application.
    let sockets =
        if socket_dir.len() + "/.s.PGSQL.".len() + port.to_string().len() <= MAX_SOCKET_PATH {
            format!("\"{}\"", socket_dir.replace('"', "\"\""))
        } else {
            String::new()
        };
    [
        "-p".to_owned(),
        port.to_string(),
        "-c".to_owned(),
        "listen_addresses=127.0.0.1".to_owned(),
        "-c".to_owned(),
        format!("unix_socket_directories={sockets}"),
    ]
    .iter()
    .map(|option| shell_quote(option))
    .collect::<Vec<_>>()
    .join(" ")
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_options_survive_the_shell_and_postgres_list_parsing() {
        let options = server_options(5433, Path::new("/home/a b/it's/.pgdata"));
        assert_eq!(
            options,
            r#"'-p' '5433' '-c' 'listen_addresses=127.0.0.1' '-c' 'unix_socket_directories="/home/a b/it'\''s/.pgdata"'"#
        );
    }

    #[test]
    fn a_socket_path_too_long_for_sun_path_is_left_out() {
        let long = PathBuf::from(format!("/{}/.pgdata", "d".repeat(90)));
        let options = server_options(5433, &long);
        assert!(options.ends_with("'unix_socket_directories='"), "{options}");
    }

    #[test]
    fn a_taken_preferred_port_is_replaced_by_a_free_one() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let chosen = choose_port(taken_port).unwrap();
        assert_ne!(chosen, taken_port);
        drop(taken);
        assert_eq!(choose_port(taken_port).unwrap(), taken_port);
    }
}

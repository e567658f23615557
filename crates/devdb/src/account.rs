//! The account `initdb`, `pg_ctl` and so the server run as: PostgreSQL
//! refuses to run as root, so a root process hands them to the `postgres`
//! system user.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{User, geteuid};

use crate::error::DevDbError;

/// The system account the distribution packages create to run PostgreSQL.
const SYSTEM_USER: &str = "postgres";

/// Variables that would point `pg_ctl`/`initdb` at some other cluster or
/// server than ours: a developer's shell often has them set for another one.
const FOREIGN_PG_VARIABLES: &[&str] = &[
    "PGDATA",
    "PGPORT",
    "PGHOST",
    "PGHOSTADDR",
    "PGUSER",
    "PGDATABASE",
    "PGOPTIONS",
];

/// The account `initdb`, `pg_ctl` and so the server run as.
#[derive(Clone, Debug)]
pub(crate) enum RunAs {
    CurrentUser { uid: u32 },
    SystemUser { uid: u32, gid: u32, home: PathBuf },
}

impl RunAs {
    pub(crate) fn detect() -> Result<Self, DevDbError> {
        let euid = geteuid();
        if !euid.is_root() {
            return Ok(Self::CurrentUser { uid: euid.as_raw() });
        }
        match User::from_name(SYSTEM_USER) {
            Ok(Some(user)) if !user.uid.is_root() => Ok(Self::SystemUser {
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
                home: user.dir,
            }),
            Ok(_) => Err(DevDbError::NoSystemUser),
            Err(errno) => Err(DevDbError::Io {
                action: "cannot look up the user",
                path: PathBuf::from(SYSTEM_USER),
                source: io::Error::from(errno),
            }),
        }
    }

    pub(crate) fn uid(&self) -> u32 {
        match self {
            Self::CurrentUser { uid } | Self::SystemUser { uid, .. } => *uid,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Self::CurrentUser { uid } => format!("this process's user (uid {uid})"),
            Self::SystemUser { uid, .. } => format!("the `{SYSTEM_USER}` user (uid {uid})"),
        }
    }

    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        for variable in FOREIGN_PG_VARIABLES {
            command.env_remove(variable);
        }
        // Every path passed is absolute; "/" is a working directory that the
        // `postgres` user can always enter, unlike root's.
        command.current_dir("/").stdin(Stdio::null());
        if let Self::SystemUser { uid, gid, home } = self {
            // std drops root's supplementary groups when it switches the uid.
            command
                .uid(*uid)
                .gid(*gid)
                .env("HOME", home)
                .env("USER", SYSTEM_USER)
                .env("LOGNAME", SYSTEM_USER);
        }
        command
    }

    /// What to add to an error whose cause may be that the `postgres` user
    /// cannot reach the project directory (e.g. a project under `/root`).
    pub(crate) fn permission_hint(&self, stderr: &str, data_dir: &Path) -> String {
        match self {
            Self::SystemUser { .. } if stderr.contains("Permission denied") => format!(
                " (as root, PostgreSQL runs as the `{SYSTEM_USER}` user, which must be able to \
                 reach {}: every directory above it needs o+x; or keep the project elsewhere)",
                data_dir.display()
            ),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_finds_the_postgres_account() {
        if !geteuid().is_root() {
            return;
        }
        match RunAs::detect().unwrap() {
            RunAs::SystemUser { uid, .. } => assert_ne!(uid, 0),
            other => panic!("root must not run PostgreSQL itself: {other:?}"),
        }
        assert!(User::from_name("no-such-user-here").unwrap().is_none());
    }
}

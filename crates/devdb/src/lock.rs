//! The `flock`s that let several processes share one cluster: an exclusive
//! one on the data directory while a process starts or stops the server, and
//! a shared one on `customer-api.lock` for as long as a process uses it. The
//! kernel drops both when a process dies, however it dies, which is why they
//! are `flock`s and not files whose presence means something.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::account::RunAs;
use crate::error::DevDbError;

/// Named as when this was a module of customer-api: renaming it would let an
/// older build and this one each take the server for theirs alone.
pub(crate) const USERS_LOCK: &str = "customer-api.lock";

/// Takes the exclusive startup lock (an `flock` on the data directory
/// itself, which exists before `initdb` and gets no extra file), waiting for
/// another process that is starting or stopping the server.
pub(crate) fn lock_directory(
    data_dir: &Path,
    deadline: Instant,
) -> Result<Flock<File>, DevDbError> {
    // Rust opens every file close-on-exec, so neither `pg_ctl` nor the server
    // inherits this lock (nor the users lock) and keeps it after we exit.
    let directory = File::open(data_dir).map_err(|source| DevDbError::Io {
        action: "cannot open",
        path: data_dir.to_owned(),
        source,
    })?;
    flock_until(
        directory,
        FlockArg::LockExclusiveNonblock,
        data_dir,
        data_dir,
        deadline,
    )
}

/// Opens `customer-api.lock` and takes a shared lock on it, telling every
/// other process that this one uses the server.
pub(crate) fn join_users(
    data_dir: &Path,
    run_as: &RunAs,
    deadline: Instant,
) -> Result<Flock<File>, DevDbError> {
    let path = data_dir.join(USERS_LOCK);
    let io_error = |action| {
        let path = path.clone();
        move |source| DevDbError::Io {
            action,
            path,
            source,
        }
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_error("cannot open"))?;
    // Everything in the data directory belongs to the server's account,
    // so that its own tools (pg_basebackup, say) can read it all.
    if let RunAs::SystemUser { uid, gid, .. } = *run_as {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            .map_err(io_error("cannot change the owner of"))?;
    }
    // Only a stopping process holds this one exclusively, and it does so
    // under the startup lock, which the caller holds: this wait is for a
    // process that is no customer-api.
    flock_until(
        file,
        FlockArg::LockSharedNonblock,
        data_dir,
        &path,
        deadline,
    )
}

/// Whether no other process holds the users lock: converting our shared lock
/// succeeds only then. Called under the startup lock, so no one can join
/// meanwhile; if it fails, the shared lock may be gone too (flock converts by
/// unlocking first), which is fine for a process that is stopping.
pub(crate) fn is_last_user(users: &Flock<File>) -> io::Result<bool> {
    loop {
        match users.relock(FlockArg::LockExclusiveNonblock) {
            Ok(()) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(errno) if errno == Errno::EWOULDBLOCK => return Ok(false),
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// `flock` on `file` (the data directory or a file in it), polling until
/// `deadline`, since a blocking `flock` cannot time out.
fn flock_until(
    mut file: File,
    arg: FlockArg,
    data_dir: &Path,
    path: &Path,
    deadline: Instant,
) -> Result<Flock<File>, DevDbError> {
    let started = Instant::now();
    loop {
        file = match Flock::lock(file, arg) {
            Ok(locked) => return Ok(locked),
            Err((file, Errno::EINTR)) => file,
            Err((file, errno)) if errno == Errno::EWOULDBLOCK => {
                if Instant::now() >= deadline {
                    return Err(DevDbError::Busy {
                        data_dir: data_dir.to_owned(),
                        waited: started.elapsed(),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
                file
            }
            Err((_, errno)) => {
                return Err(DevDbError::Io {
                    action: "cannot lock",
                    path: path.to_owned(),
                    source: errno.into(),
                });
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("devdb-lock-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_startup_lock_excludes_a_second_holder_until_released() {
        let dir = temp_dir("startup");
        let first = lock_directory(&dir, Instant::now()).unwrap();
        let error = lock_directory(&dir, Instant::now() + Duration::from_millis(120)).unwrap_err();
        assert!(matches!(error, DevDbError::Busy { .. }), "{error}");
        drop(first);
        lock_directory(&dir, Instant::now()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_the_last_user_may_stop_the_server() {
        let dir = temp_dir("users");
        // Root's account choice would hand the file to `postgres`; not the point here.
        let me = RunAs::CurrentUser { uid: 0 };
        let first = join_users(&dir, &me, Instant::now()).unwrap();
        let second = join_users(&dir, &me, Instant::now()).unwrap();
        assert!(!is_last_user(&second).unwrap(), "the first still uses it");
        drop(second);
        assert!(is_last_user(&first).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

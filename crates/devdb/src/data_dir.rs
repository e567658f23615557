//! The cluster's directory, `<project>/.pgdata`: its path, owner and mode,
//! and whether it holds a cluster yet.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::account::RunAs;
use crate::error::DevDbError;

/// pg_ctl runs the server through `/bin/sh -c` with the data directory in
/// double quotes, which these characters would break out of.
pub(crate) fn check_path_for_shell(path: &Path) -> Result<(), DevDbError> {
    match path.to_str() {
        Some(text) if !text.contains(['"', '$', '`', '\\']) => Ok(()),
        _ => Err(DevDbError::UnsupportedPath {
            path: path.to_owned(),
        }),
    }
}

/// Creates the data directory (mode 0700, as `initdb` wants it) owned by the
/// account that will run the server, or checks that an existing one is.
pub(crate) fn prepare_data_dir(data_dir: &Path, run_as: &RunAs) -> Result<(), DevDbError> {
    let io_error = |action| {
        move |source| DevDbError::Io {
            action,
            path: data_dir.to_owned(),
            source,
        }
    };
    match DirBuilder::new().mode(0o700).create(data_dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(io_error("cannot create")(error)),
    }
    let metadata = fs::metadata(data_dir).map_err(io_error("cannot read"))?;
    if !metadata.is_dir() {
        return Err(DevDbError::NotADataDirectory {
            path: data_dir.to_owned(),
        });
    }
    if metadata.uid() == run_as.uid() {
        return Ok(());
    }
    match run_as {
        // Root made it (now or in an interrupted first run): hand it over
        // while it is still empty. A full one is left alone.
        RunAs::SystemUser { uid, gid, .. } if is_empty_dir(data_dir)? => {
            std::os::unix::fs::chown(data_dir, Some(*uid), Some(*gid))
                .map_err(io_error("cannot change the owner of"))?;
            fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
                .map_err(io_error("cannot change the mode of"))
        }
        _ => Err(DevDbError::WrongOwner {
            path: data_dir.to_owned(),
            owner: metadata.uid(),
            runner: run_as.describe(),
        }),
    }
}

pub(crate) fn is_empty_dir(path: &Path) -> Result<bool, DevDbError> {
    let mut entries = fs::read_dir(path).map_err(|source| DevDbError::Io {
        action: "cannot list",
        path: path.to_owned(),
        source,
    })?;
    Ok(entries.next().is_none())
}

/// The major version that created the cluster, `None` when there is none yet.
pub(crate) fn read_pg_version(data_dir: &Path) -> Result<Option<String>, DevDbError> {
    let path = data_dir.join("PG_VERSION");
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DevDbError::Io {
            action: "cannot read",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_pg_ctl_cannot_quote_are_refused() {
        assert!(check_path_for_shell(Path::new("/home/a b/it's/.pgdata")).is_ok());
        for bad in ["/a\"b", "/a$b", "/a`b", "/a\\b"] {
            let error = check_path_for_shell(Path::new(bad)).unwrap_err();
            assert!(matches!(error, DevDbError::UnsupportedPath { .. }), "{bad}");
        }
    }
}

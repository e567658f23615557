//! Finding the installed PostgreSQL server programs (`initdb`, `pg_ctl`,
//! `postgres`) and choosing among several versions: the newest for a new
//! cluster, the one that created an existing cluster otherwise.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::DevDbError;

/// A PostgreSQL version as `postgres --version` prints it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PgVersion(Vec<u32>);

impl PgVersion {
    fn parse(version_output: &str) -> Option<Self> {
        let text = version_output
            .split_once("(PostgreSQL)")
            .map_or(version_output, |(_, rest)| rest);
        let token = text
            .split_whitespace()
            .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))?;
        // "16beta1" is 16, "15.20" is 15.20.
        let parts: Vec<u32> = token
            .split('.')
            .map_while(|part| {
                let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect();
        (!parts.is_empty()).then_some(Self(parts))
    }

    /// The major version as `PG_VERSION` records it: "15", or "9.6" before 10.
    fn major(&self) -> String {
        match self.0.as_slice() {
            [first, ..] if *first >= 10 => first.to_string(),
            [first, second, ..] => format!("{first}.{second}"),
            [first] => format!("{first}.0"),
            [] => String::new(),
        }
    }
}

impl std::fmt::Display for PgVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// One installation's server programs, in the directory that really holds
/// them.
#[derive(Clone, Debug)]
pub(crate) struct Binaries {
    pub(crate) dir: PathBuf,
    pub(crate) version: PgVersion,
}

const SEARCHED: &str = "/usr/lib/postgresql/*/bin, `pg_config --bindir` and PATH";

/// Where server programs may be: Debian and Ubuntu install every major
/// version side by side under /usr/lib/postgresql and put none on PATH;
/// `pg_config` knows a source or vendor build's; PATH has Homebrew's and
/// Fedora's.
fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        dirs.extend(entries.flatten().map(|entry| entry.path().join("bin")));
    }
    let pg_config = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success());
    if let Some(output) = pg_config {
        let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !dir.is_empty() {
            dirs.push(PathBuf::from(dir));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// The directory really holding the programs (PATH often has symlinks to
/// them), when `initdb`, `pg_ctl` and `postgres` are all there.
fn resolve_bin_dir(dir: &Path) -> Option<PathBuf> {
    let initdb = fs::canonicalize(dir.join("initdb")).ok()?;
    let real_dir = initdb.parent()?.to_owned();
    let executable = |name: &str| {
        fs::metadata(real_dir.join(name))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    (executable("initdb") && executable("pg_ctl") && executable("postgres")).then_some(real_dir)
}

fn installed_binaries(candidates: Vec<PathBuf>) -> Vec<Binaries> {
    let mut found: Vec<Binaries> = Vec::new();
    for dir in candidates.iter().filter_map(|dir| resolve_bin_dir(dir)) {
        if found.iter().any(|b| b.dir == dir) {
            continue;
        }
        // `--version` is answered before the server's root check.
        let version = Command::new(dir.join("postgres"))
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| PgVersion::parse(&String::from_utf8_lossy(&output.stdout)));
        if let Some(version) = version {
            found.push(Binaries { dir, version });
        }
    }
    found
}

/// The newest installation, or the one matching an existing cluster's major
/// version (a cluster is only usable by the major version that created it).
fn choose_binaries(
    mut installed: Vec<Binaries>,
    required_major: Option<&str>,
    data_dir: &Path,
    searched: &str,
) -> Result<Binaries, DevDbError> {
    // Stable: among equal versions the earlier-searched place wins.
    installed.sort_by(|a, b| b.version.cmp(&a.version));
    match required_major {
        None => installed
            .into_iter()
            .next()
            .ok_or_else(|| DevDbError::BinariesNotFound {
                searched: searched.to_owned(),
            }),
        Some(major) => {
            if installed.is_empty() {
                return Err(DevDbError::BinariesNotFound {
                    searched: searched.to_owned(),
                });
            }
            let found = installed
                .iter()
                .map(|b| format!("{} ({})", b.version, b.dir.display()))
                .collect::<Vec<_>>()
                .join(", ");
            installed
                .into_iter()
                .find(|b| b.version.major() == major)
                .ok_or_else(|| DevDbError::VersionNotInstalled {
                    data_dir: data_dir.to_owned(),
                    major: major.to_owned(),
                    found,
                })
        }
    }
}

/// The programs in `explicit`, or the best of those installed where
/// distributions put them.
pub(crate) fn find_binaries(
    explicit: Option<&Path>,
    required_major: Option<&str>,
    data_dir: &Path,
) -> Result<Binaries, DevDbError> {
    let (candidates, searched) = match explicit {
        Some(dir) => (vec![dir.to_owned()], dir.display().to_string()),
        None => (candidate_dirs(), SEARCHED.to_owned()),
    };
    choose_binaries(
        installed_binaries(candidates),
        required_major,
        data_dir,
        &searched,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_postgres_prints_them() {
        let debian = PgVersion::parse("postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n");
        assert_eq!(debian, Some(PgVersion(vec![15, 20])));
        assert_eq!(debian.unwrap().major(), "15");
        let old = PgVersion::parse("postgres (PostgreSQL) 9.6.24").unwrap();
        assert_eq!(old.major(), "9.6");
        assert_eq!(
            PgVersion::parse("postgres (PostgreSQL) 17beta2"),
            Some(PgVersion(vec![17]))
        );
        assert_eq!(PgVersion::parse("postgres: command not found"), None);
    }

    #[test]
    fn versions_order_numerically() {
        let mut versions = [
            PgVersion(vec![9, 6, 24]),
            PgVersion(vec![16, 1]),
            PgVersion(vec![15, 20]),
        ];
        versions.sort();
        assert_eq!(versions.last().unwrap().major(), "16");
        assert_eq!(versions.first().unwrap().major(), "9.6");
    }

    fn installed(versions: &[(&str, &[u32])]) -> Vec<Binaries> {
        versions
            .iter()
            .map(|(dir, version)| Binaries {
                dir: PathBuf::from(dir),
                version: PgVersion(version.to_vec()),
            })
            .collect()
    }

    #[test]
    fn the_newest_installation_is_chosen_for_a_new_cluster() {
        let chosen = choose_binaries(
            installed(&[
                ("/pg/13", &[13, 9]),
                ("/pg/16", &[16, 2]),
                ("/pg/15", &[15, 7]),
            ]),
            None,
            Path::new(".pgdata"),
            "here",
        )
        .unwrap();
        assert_eq!(chosen.dir, Path::new("/pg/16"));
    }

    #[test]
    fn an_existing_cluster_gets_its_own_major_version() {
        let chosen = choose_binaries(
            installed(&[("/pg/16", &[16, 2]), ("/pg/15", &[15, 7])]),
            Some("15"),
            Path::new(".pgdata"),
            "here",
        )
        .unwrap();
        assert_eq!(chosen.dir, Path::new("/pg/15"));

        let error = choose_binaries(
            installed(&[("/pg/16", &[16, 2])]),
            Some("14"),
            Path::new("/p/.pgdata"),
            "here",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("holds a PostgreSQL 14 cluster"), "{error}");
        assert!(error.contains("apt-get install postgresql-14"), "{error}");
        assert!(error.contains("16.2 (/pg/16)"), "{error}");
    }

    #[test]
    fn no_installation_names_the_package_to_install() {
        let error = choose_binaries(Vec::new(), None, Path::new(".pgdata"), SEARCHED)
            .unwrap_err()
            .to_string();
        assert!(error.contains("apt-get install postgresql"), "{error}");
        assert!(error.contains("/usr/lib/postgresql/*/bin"), "{error}");
    }

    #[test]
    fn a_directory_without_the_server_programs_is_not_an_installation() {
        let error = find_binaries(
            Some(Path::new("/nonexistent/bin")),
            None,
            Path::new(".pgdata"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("/nonexistent/bin"), "{error}");
        assert!(error.contains("apt-get install postgresql"), "{error}");
    }

    #[test]
    fn the_installed_postgresql_is_found() {
        // Every machine that runs this project's tests has PostgreSQL.
        let found = find_binaries(None, None, Path::new(".pgdata")).unwrap();
        for program in ["initdb", "pg_ctl", "postgres"] {
            assert!(found.dir.join(program).is_file(), "{}", found.dir.display());
        }
        assert!(found.version >= PgVersion(vec![10]), "{}", found.version);
    }
}

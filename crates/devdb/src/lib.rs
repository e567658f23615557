//! A private PostgreSQL for development, so that `cargo run` of customer-api
//! works with no configuration on a machine that has PostgreSQL installed but
//! no server where `DATABASE_URL` points by default.
//!
//! The cluster lives in `<project>/.pgdata` (git-ignored). It is created on
//! first use by the machine's own `initdb`, started and stopped by its own
//! `pg_ctl`, and keeps its data between runs. It uses trust authentication,
//! which is why it listens on 127.0.0.1 only; its Unix socket goes into the
//! data directory because an ordinary user cannot write the system's socket
//! directory (`/var/run/postgresql` on Debian).
//!
//! PostgreSQL refuses to run as root. When this process is root, `initdb` and
//! `pg_ctl` run as the `postgres` system user that the distribution packages
//! create, and the data directory belongs to that user.
//!
//! This is a crate of its own, used only by the customer-api binary, so that
//! the server library carries no process supervision.
//!
//! # Map
//!
//! - `cluster`: [`DevCluster`], the handle the binary holds: opens the
//!   cluster in order under the startup lock, and stops the server when the
//!   last process using it stops.
//! - `probe`: whether a server answers at a URL, and waiting until it accepts
//!   connections.
//! - `binaries`: finding the installed `initdb`, `pg_ctl` and `postgres`, and
//!   choosing the version an existing cluster needs.
//! - `account`: the account the server runs as (the `postgres` user when
//!   this process is root), and the environment its commands get.
//! - `data_dir`: creating and checking `.pgdata` and its owner.
//! - `lock`: the `flock`s that let several processes share one cluster.
//! - `server`: running `initdb` and `pg_ctl` (status, start, stop).
//! - `postmaster`: reading what a server leaves in the data directory
//!   (`postmaster.pid`, lock files of a killed server, its log).
//! - `error`: [`DevDbError`], whose messages say what to install or remove.
//!
//! # Why not a crate
//!
//! `initdb` and `pg_ctl` are PostgreSQL's own maintained tools for exactly
//! this job; what is left is choosing the binaries, the user and the port.
//! The crates that wrap them were tried here (November 2026) and did not fit:
//!
//! - `postgresql_embedded` 0.22 can use installed binaries
//!   (`trust_installation_dir`), but runs `initdb` and `pg_ctl` as the calling
//!   user with no way to switch, so as root both abort ("cannot be run as
//!   root"). It initialises with password authentication and a new random
//!   password per process (a kept cluster would need that password kept too),
//!   takes any `postmaster.pid` for a running server, pulls in sqlx and a
//!   reqwest stack for downloading PostgreSQL (over 30 crates this project
//!   does not build otherwise) and needs Rust 1.94 where this crate promises
//!   1.85.
//! - `pgtemp` 0.7 always runs `initdb` into a new temporary directory (its
//!   `persist` option keeps the directory but never reuses it), becomes the
//!   `postgres` user through `sudo`, which Debian does not install by default,
//!   panics instead of returning errors, and turns off fsync and full-page
//!   writes: right for throw-away test databases, wrong for data kept between
//!   runs.
//!
//! The system calls (effective uid, the user database, `flock`, signals in
//! the tests) go through `nix`, so that this crate has no `unsafe` of its own.
//!
//! # Sharing, crashes and signals
//!
//! Several processes may use one cluster (two servers with different
//! `LISTEN_ADDR`s, say). Starting and stopping are serialised by an exclusive
//! `flock` on the data directory, and every process using the server holds a
//! shared `flock` on `customer-api.lock` inside it for as long as it runs; the
//! one that stops and finds no other holder stops the server. The kernel
//! drops the locks of a killed process, so a server left behind by a
//! `kill -9`ed process is adopted by the next one and stopped when that one
//! stops. A server that was itself killed leaves a stale `postmaster.pid`,
//! which `pg_ctl start` gets past (with crash recovery, as after a power
//! cut) once the dead server is reaped; until then it is a zombie that
//! `pg_ctl` takes for alive, so its lock files are removed here first.
//!
//! `pg_ctl` starts the server in a session of its own, so Ctrl-C in the
//! terminal reaches only this process: the database stays up while requests
//! drain, and is stopped after that.
#![cfg(unix)]
#![forbid(unsafe_code)]

mod account;
mod binaries;
mod cluster;
mod data_dir;
mod error;
mod lock;
mod postmaster;
mod probe;
mod server;

pub use cluster::{
    DATA_DIR_NAME, DEFAULT_PREFERRED_PORT, DevCluster, DevClusterOptions, private_cluster,
};
pub use error::DevDbError;
pub use probe::server_answers;

//! Shared helpers for the out-of-process integration tests of pg_eventsource.
//!
//! The tests talk to an already running PostgreSQL 15 cluster that has the
//! extension installed. Connection settings come from the environment:
//!
//! * `ES_PGHOST` (default `127.0.0.1`; a value starting with `/` is a unix
//!   socket directory),
//! * `ES_PGPORT` (default `28815`),
//! * `ES_PGUSER` (default `postgres`, trust authentication),
//! * `ES_PG_BIN` (default `/usr/lib/postgresql/15/bin`, for `pg_dump`/`psql`).
//!
//! Every test works in a database of its own ([`TestDb`]), so the tests of
//! one binary can run in parallel. Every wait is bounded: connections have a
//! connect timeout and a statement timeout, and every polling loop has a
//! deadline.

use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// No single statement of a test may run longer than this.
pub const STATEMENT_TIMEOUT: &str = "120s";

/// Host (or unix socket directory) of the cluster under test.
pub fn host() -> String {
    std::env::var("ES_PGHOST").unwrap_or_else(|_| "127.0.0.1".into())
}

pub fn port() -> u16 {
    match std::env::var("ES_PGPORT") {
        Ok(p) => p
            .parse()
            .unwrap_or_else(|_| panic!("ES_PGPORT={p:?} is not a port number")),
        Err(_) => 28815,
    }
}

pub fn user() -> String {
    std::env::var("ES_PGUSER").unwrap_or_else(|_| "postgres".into())
}

/// Directory holding `pg_dump` and `psql`.
pub fn pg_bin_dir() -> String {
    std::env::var("ES_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into())
}

fn check_local(host: &str) {
    assert!(
        host.starts_with('/') || host == "127.0.0.1" || host == "localhost" || host == "::1",
        "ES_PGHOST={host:?}: these tests only talk to a local cluster (127.0.0.1 or a unix socket directory)"
    );
}

/// Connection settings for database `db`.
pub fn config(db: &str) -> Config {
    let host = host();
    check_local(&host);
    let mut cfg = Config::new();
    cfg.host(&host)
        .port(port())
        .user(&user())
        .dbname(db)
        .application_name("pg_eventsource_integration")
        .connect_timeout(Duration::from_secs(10))
        .options(&format!("-c statement_timeout={STATEMENT_TIMEOUT}"));
    cfg
}

/// A new connection to database `db`.
pub fn connect(db: &str) -> Client {
    config(db).connect(NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot connect to database {db} at {}:{}: {e}",
            host(),
            port()
        )
    })
}

/// A connection to the maintenance database, for CREATE/DROP DATABASE.
pub fn connect_admin() -> Client {
    connect("postgres")
}

/// Drops database `name` if it exists (disconnecting its sessions) and creates it empty.
pub fn create_empty_database(name: &str) {
    assert!(
        name.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "database name {name:?} must be a plain identifier"
    );
    let mut admin = connect_admin();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap_or_else(|e| panic!("DROP DATABASE {name}: {}", describe(&e)));
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {}", describe(&e)));
}

/// Drops database `name` if it exists.
pub fn drop_database(name: &str) {
    let mut admin = connect_admin();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap_or_else(|e| panic!("DROP DATABASE {name}: {}", describe(&e)));
}

/// A fresh database with the extension created, for one test.
///
/// It is dropped again when the test passes and kept for inspection when the
/// test fails (the next run drops it before creating it again).
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    /// `DROP DATABASE IF EXISTS ... WITH (FORCE)`, `CREATE DATABASE`, `CREATE EXTENSION pg_eventsource`.
    pub fn create(test_name: &str) -> TestDb {
        let name = format!("es_it_{test_name}");
        create_empty_database(&name);
        let db = TestDb { name };
        db.connect()
            .batch_execute("CREATE EXTENSION pg_eventsource")
            .unwrap_or_else(|e| panic!("CREATE EXTENSION pg_eventsource: {}", describe(&e)));
        db
    }

    /// `DROP DATABASE IF EXISTS ... WITH (FORCE)`, `CREATE DATABASE`, without the extension.
    pub fn create_empty(test_name: &str) -> TestDb {
        let name = format!("es_it_{test_name}");
        create_empty_database(&name);
        TestDb { name }
    }

    /// Like [`TestDb::create`], then one committed append to stream `warmup-0`.
    ///
    /// The first append in a database records the cluster's position offset
    /// (a row in `es.position_base`), and until that transaction ends every
    /// other append in the database waits for it. Tests about something else
    /// start after that has happened; see `tests/no_cross_stream_waits.rs`
    /// for the test of that first append itself.
    pub fn create_warm(test_name: &str) -> TestDb {
        let db = TestDb::create(test_name);
        let v = append(&mut db.connect(), "warmup-0", "WarmedUp", "{}", None)
            .unwrap_or_else(|e| panic!("warm-up append: {}", describe(&e)));
        assert_eq!(v, 1);
        db
    }

    pub fn connect(&self) -> Client {
        connect(&self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !thread::panicking() {
            drop_database(&self.name);
        }
    }
}

/// `es.append_event(stream, event_type, data, expected_version)`; returns the new version.
pub fn append(
    client: &mut Client,
    stream: &str,
    event_type: &str,
    data_json: &str,
    expected: Option<i64>,
) -> Result<i64, postgres::Error> {
    client
        .query_one(
            "SELECT es.append_event($1, $2, $3::text::jsonb, expected_version => $4)",
            &[&stream, &event_type, &data_json, &expected],
        )
        .map(|row| row.get(0))
}

/// `es.append_events(stream, events, expected_version)`; returns the new version.
pub fn append_batch(
    client: &mut Client,
    stream: &str,
    events_json: &str,
    expected: Option<i64>,
) -> Result<i64, postgres::Error> {
    client
        .query_one(
            "SELECT es.append_events($1, $2::text::jsonb, expected_version => $3)",
            &[&stream, &events_json, &expected],
        )
        .map(|row| row.get(0))
}

/// `es.stream_version(stream)`.
pub fn stream_version(client: &mut Client, stream: &str) -> i64 {
    client
        .query_one("SELECT es.stream_version($1)", &[&stream])
        .unwrap_or_else(|e| panic!("es.stream_version({stream}): {}", describe(&e)))
        .get(0)
}

/// The SQLSTATE of a database error, if it is one.
/// Runs `sql` (one or more statements); panics with the error, described.
pub fn exec(c: &mut Client, sql: &str) {
    c.batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)));
}

/// The first column of the one row `sql` returns, as a bigint.
pub fn one_i64(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)))
        .get(0)
}

pub fn sqlstate(e: &postgres::Error) -> Option<&SqlState> {
    e.code()
}

/// The SQLSTATE of `e` as text ("" for an error without one).
pub fn code_of(e: &postgres::Error) -> String {
    e.code().map(|c| c.code().to_owned()).unwrap_or_default()
}

/// Connects to `db` as `role` (a role of the test's own, set up by it).
pub fn connect_as(db: &str, role: &str) -> Client {
    let mut cfg = config(db);
    cfg.user(role);
    cfg.connect(NoTls)
        .unwrap_or_else(|e| panic!("connect to {db} as {role}: {e}"))
}

/// Whether `e` is SQLSTATE 40001 (serialization_failure).
pub fn is_serialization_failure(e: &postgres::Error) -> bool {
    sqlstate(e) == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
}

/// An error with its SQLSTATE and server message, for assertion messages.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "SQLSTATE {}: {}{}",
            db.code().code(),
            db.message(),
            db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        None => e.to_string(),
    }
}

/// The server message of a database error ("" for other errors).
pub fn message(e: &postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default()
}

/// The backend process id of a connection.
pub fn backend_pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pg_backend_pid()")
        .get(0)
}

/// Polls `cond` every 10 ms until it holds; false if `timeout` passes first.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether backend `pid` is currently waiting for a heavyweight lock.
pub fn is_waiting_for_lock(observer: &mut Client, pid: i32) -> bool {
    observer
        .query_one(
            "SELECT coalesce(bool_or(wait_event_type = 'Lock'), false)
             FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .expect("pg_stat_activity")
        .get(0)
}

/// One event as `es.read_all` returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEvent {
    pub global_position: i64,
    pub event_id: String,
    pub stream_id: String,
    pub version: i64,
}

/// One page of `es.read_all(after, page_size)`.
pub fn read_all_page(client: &mut Client, after: i64, page_size: i32) -> Vec<SeenEvent> {
    client
        .query(
            "SELECT global_position, event_id::text, stream_id, version
             FROM es.read_all($1, $2)",
            &[&after, &page_size],
        )
        .unwrap_or_else(|e| panic!("es.read_all({after}, {page_size}): {}", describe(&e)))
        .into_iter()
        .map(|r| SeenEvent {
            global_position: r.get(0),
            event_id: r.get(1),
            stream_id: r.get(2),
            version: r.get(3),
        })
        .collect()
}

/// Pages through `es.read_all` after `after` until `want` events have been
/// returned (waiting while the read horizon holds them back: a transaction
/// still running anywhere in the cluster holds every reader back) or
/// `timeout` passes. Checks that positions strictly increase.
pub fn read_all_until(
    client: &mut Client,
    after: i64,
    want: usize,
    timeout: Duration,
) -> Vec<SeenEvent> {
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<SeenEvent> = Vec::new();
    let mut last = after;
    while seen.len() < want {
        let page = read_all_page(client, last, 100);
        if page.is_empty() {
            if Instant::now() >= deadline {
                break;
            }
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        for e in page {
            assert!(
                e.global_position > last,
                "es.read_all went backwards or repeated: position {} after {last}",
                e.global_position
            );
            last = e.global_position;
            seen.push(e);
        }
    }
    seen
}

/// Waits for a child process, killing it if it runs past `deadline`.
pub fn wait_child(child: &mut Child, what: &str, deadline: Instant) -> ExitStatus {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish in time; killed it");
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// Runs `pg_dump DB_FROM | psql -v ON_ERROR_STOP=1 -d DB_TO` (plain format),
/// bounded by `timeout`. Panics with both programs' stderr when either fails.
pub fn dump_and_restore(db_from: &str, db_to: &str, timeout: Duration) {
    let bin = pg_bin_dir();
    let host = host();
    check_local(&host);
    let port = port().to_string();
    let user = user();
    let deadline = Instant::now() + timeout;

    let mut dump = Command::new(format!("{bin}/pg_dump"))
        .args([
            "-h",
            &host,
            "-p",
            &port,
            "-U",
            &user,
            "--no-password",
            "-d",
            db_from,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}/pg_dump: {e}"));
    let dump_out = dump.stdout.take().expect("pg_dump stdout");
    let mut restore = Command::new(format!("{bin}/psql"))
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &host,
            "-p",
            &port,
            "-U",
            &user,
            "--no-password",
            "-d",
            db_to,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .env(
            "PGOPTIONS",
            format!("-c statement_timeout={STATEMENT_TIMEOUT}"),
        )
        .stdin(Stdio::from(dump_out))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}/psql: {e}"));

    // Drain both stderr pipes in threads so neither program can block on them.
    let dump_err = drain(dump.stderr.take().expect("pg_dump stderr"));
    let restore_err = drain(restore.stderr.take().expect("psql stderr"));
    let dump_status = wait_child(&mut dump, "pg_dump", deadline);
    let restore_status = wait_child(&mut restore, "psql (restore)", deadline);
    let dump_err = dump_err.join().expect("pg_dump stderr reader");
    let restore_err = restore_err.join().expect("psql stderr reader");
    assert!(
        dump_status.success() && restore_status.success(),
        "pg_dump {db_from} | psql {db_to} failed: pg_dump {dump_status}, psql {restore_status}\n\
         pg_dump stderr:\n{dump_err}\npsql stderr:\n{restore_err}"
    );
    assert!(
        !restore_err.contains("ERROR"),
        "psql reported errors while restoring:\n{restore_err}"
    );
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Runs a command; panics with its output when it fails. Returns its stdout.
pub fn run_command(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A PostgreSQL program of `ES_PG_BIN` run as the `postgres` user, with the
/// environment variables `env` (`NAME=value`) and without RUST_BACKTRACE
/// unless `env` sets it.
pub fn as_postgres(program: &str, env: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--", "env"]);
    if !env.iter().any(|e| e.starts_with("RUST_BACKTRACE=")) {
        c.args(["-u", "RUST_BACKTRACE"]);
    }
    c.args(env).arg(format!("{}/{program}", pg_bin_dir()));
    c
}

/// A throwaway cluster of one test's own: `initdb` in a temporary directory
/// named after it, started on its port (`port_var` in the environment, else
/// `default_port`) with `options` and the environment `env`; stopped
/// (immediate) on drop, and removed unless the test failed (the next run
/// removes a leftover).
pub struct ThrowawayCluster {
    pub dir: std::path::PathBuf,
    pub port: u16,
    options: String,
    env: Vec<String>,
}

impl ThrowawayCluster {
    pub fn create(
        name: &str,
        port_var: &str,
        default_port: u16,
        options: &str,
        env: &[&str],
    ) -> ThrowawayCluster {
        let port: u16 = std::env::var(port_var)
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(default_port);
        let dir = std::env::temp_dir().join(format!("es-it-{name}-{port}"));
        let cluster = ThrowawayCluster {
            dir,
            port,
            options: options.to_owned(),
            env: env.iter().map(|e| (*e).to_owned()).collect(),
        };
        if cluster.dir.exists() {
            let _ = cluster.stop_immediately();
            std::fs::remove_dir_all(&cluster.dir)
                .unwrap_or_else(|e| panic!("cannot remove {}: {e}", cluster.dir.display()));
        }
        std::fs::create_dir_all(&cluster.dir).unwrap();
        run_command(Command::new("chown").arg("postgres:").arg(&cluster.dir));
        run_command(
            as_postgres("initdb", &[])
                .arg("-D")
                .arg(cluster.data())
                .args(["--auth=trust", "--username=postgres", "-E", "UTF8"]),
        );
        cluster.start("log-1");
        cluster
    }

    pub fn data(&self) -> std::path::PathBuf {
        self.dir.join("data")
    }

    /// `pg_ctl start -w`; the server log goes to `self.dir/<log>`.
    pub fn start(&self, log: &str) {
        let env: Vec<&str> = self.env.iter().map(String::as_str).collect();
        run_command(
            as_postgres("pg_ctl", &env)
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.join(log))
                .args(["-w", "-t", "120", "-o"])
                .arg(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 {}",
                    self.port,
                    self.dir.display(),
                    self.options
                ))
                .arg("start"),
        );
    }

    fn stop_immediately(&self) -> std::io::Result<std::process::Output> {
        as_postgres("pg_ctl", &[])
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "60", "stop"])
            .output()
    }

    /// The server log `self.dir/<log>`.
    pub fn log(&self, log: &str) -> String {
        std::fs::read_to_string(self.dir.join(log)).unwrap_or_default()
    }

    pub fn config(&self, db: &str) -> Config {
        let mut cfg = Config::new();
        cfg.host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname(db)
            .application_name("pg_eventsource_integration")
            .connect_timeout(Duration::from_secs(10))
            .options(&format!("-c statement_timeout={STATEMENT_TIMEOUT}"));
        cfg
    }

    pub fn connect(&self, db: &str) -> Client {
        self.config(db)
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("cluster {}, database {db}: {e}", self.dir.display()))
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let _ = self.stop_immediately();
        // kept (stopped) for inspection when the test fails; the next run removes it
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A hot standby of a running cluster: `pg_basebackup -R` from the primary at
/// `primary_host`:`primary_port` into a temporary directory named after
/// `name`, started on `port` (nothing preloaded: its settings come from the
/// command line). Stopped (immediate) on drop, and removed unless the test
/// failed (the next run removes a leftover).
pub struct Standby {
    pub dir: std::path::PathBuf,
    pub port: u16,
}

impl Standby {
    pub fn start(name: &str, primary_host: &str, primary_port: u16, port: u16) -> Standby {
        let dir = std::env::temp_dir().join(format!("es-it-{name}-{port}"));
        let standby = Standby { dir, port };
        if standby.dir.exists() {
            standby.stop_immediately();
            std::fs::remove_dir_all(&standby.dir)
                .unwrap_or_else(|e| panic!("cannot remove {}: {e}", standby.dir.display()));
        }
        std::fs::create_dir_all(&standby.dir).unwrap();
        run_command(Command::new("chown").arg("postgres:").arg(&standby.dir));
        run_command(
            as_postgres("pg_basebackup", &[])
                .args([
                    "-h",
                    primary_host,
                    "-p",
                    &primary_port.to_string(),
                    "-U",
                    "postgres",
                ])
                .arg("-D")
                .arg(standby.data())
                .args(["-R", "-X", "stream", "-c", "fast"]),
        );
        run_command(
            as_postgres("pg_ctl", &[])
                .arg("-D")
                .arg(standby.data())
                .arg("-l")
                .arg(standby.dir.join("log"))
                .args(["-w", "-t", "60", "-o"])
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c hot_standby=on",
                    standby.dir.display()
                ))
                .arg("start"),
        );
        standby
    }

    pub fn data(&self) -> std::path::PathBuf {
        self.dir.join("data")
    }

    /// `pg_ctl promote -w`: the standby becomes a primary.
    pub fn promote(&self) {
        run_command(
            as_postgres("pg_ctl", &[])
                .arg("-D")
                .arg(self.data())
                .args(["-w", "promote"]),
        );
    }

    pub fn connect(&self, db: &str) -> Client {
        Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname(db)
            .connect_timeout(Duration::from_secs(10))
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("standby, database {db}: {e}"))
    }

    fn stop_immediately(&self) {
        let _ = as_postgres("pg_ctl", &[])
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        self.stop_immediately();
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Drops `role` from the cluster if it exists (it must own nothing and hold
/// no privileges any more).
pub fn drop_role_if_exists(role: &str) {
    let mut su = connect_admin();
    let exists: bool = su
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
            &[&role],
        )
        .unwrap_or_else(|e| panic!("pg_roles: {}", describe(&e)))
        .get(0);
    if exists {
        su.batch_execute(&format!("DROP ROLE {role}"))
            .unwrap_or_else(|e| panic!("DROP ROLE {role}: {}", describe(&e)));
    }
}

//! Several workers withdraw from one account at once through the bank's SQL
//! functions (examples/bank.sql), retrying when they lose a race (SQLSTATE 40001).
//!
//! Run:  bash examples/clients/rust/run.sh      (cargo fetches the crates the first time)
//! Needs a database with examples/bank.sql loaded: `bash scripts/run.sh` makes es_demo.
//! Connection: PGHOST, PGPORT, PGUSER, PGDATABASE (default 127.0.0.1:28815, postgres, es_demo).
//! Options: --workers N (8), --operations N per worker (12), --initial AMOUNT (100.00).
//! Exits 0 only if the final balance is never negative and equals the opening
//! balance plus the accepted deposits minus the accepted withdrawals.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// The lowest balance the account ever had, replaying its events in order.
const LOWEST: &str = "SELECT min(running)::text FROM (SELECT sum(CASE event_type WHEN 'AccountOpened' THEN (data->>'initialBalance')::numeric WHEN 'MoneyDeposited' THEN (data->>'amount')::numeric WHEN 'MoneyWithdrawn' THEN -(data->>'amount')::numeric ELSE 0 END) OVER (ORDER BY version) AS running FROM es.read_stream($1)) r";

type Error = Box<dyn std::error::Error + Send + Sync>;

fn env(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn option(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == &format!("--{name}"))
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

async fn connect() -> Result<Client, Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host(&env("PGHOST", "127.0.0.1"))
        .port(env("PGPORT", "28815").parse()?)
        .user(&env("PGUSER", "postgres"))
        .dbname(&env("PGDATABASE", "es_demo"))
        .application_name("bank-rust")
        .connect(NoTls)
        .await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("connection error: {e}");
        }
    });
    Ok(client)
}

/// Money as integer cents: no floating point anywhere.
fn cents(text: &str) -> Result<i64, Error> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty()
        || frac.len() > 2
        || !(int.chars().chain(frac.chars())).all(|c| c.is_ascii_digit())
    {
        return Err(format!("not an amount with at most 2 decimals: {text}").into());
    }
    let v = int.parse::<i64>()? * 100 + format!("{frac:0<2}").parse::<i64>()?;
    Ok(if neg { -v } else { v })
}

fn money(c: i64) -> String {
    format!(
        "{}{}.{:02}",
        if c < 0 { "-" } else { "" },
        c.abs() / 100,
        c.abs() % 100
    )
}

#[derive(Default, Debug)]
struct Totals {
    withdrawn: i64,
    deposited: i64,
    withdrawals: u64,
    deposits: u64,
    rejected: u64,
    retries: u64,
}

async fn worker(
    n: u64,
    account: String,
    operations: u64,
    start: Arc<Barrier>,
) -> Result<Totals, Error> {
    let client = connect().await?;
    let withdraw = client
        .prepare("SELECT version, balance FROM bank.withdraw($1, $2::text::numeric)")
        .await?;
    let deposit = client
        .prepare("SELECT version, balance FROM bank.deposit($1, $2::text::numeric)")
        .await?;
    let mut t = Totals::default();
    let mut seed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    start.wait().await;
    for i in 0..operations {
        let is_deposit = i % 4 == 3;
        let amount: i64 = if is_deposit {
            200
        } else {
            125 * (1 + ((n + i) % 4) as i64)
        };
        let statement = if is_deposit { &deposit } else { &withdraw };
        let mut attempt = 0u64;
        loop {
            // one statement outside BEGIN/COMMIT: one transaction per command
            match client
                .query_one(statement, &[&account, &money(amount)])
                .await
            {
                Ok(_) => {
                    if is_deposit {
                        t.deposited += amount;
                        t.deposits += 1;
                    } else {
                        t.withdrawn += amount;
                        t.withdrawals += 1;
                    }
                    break;
                }
                Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {
                    // another worker appended since our load: nothing was written; run it again
                    t.retries += 1;
                    attempt += 1;
                    if attempt == 1000 {
                        return Err(format!(
                            "worker {n}: gave up after 1000 serialization failures"
                        )
                        .into());
                    }
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    tokio::time::sleep(Duration::from_micros(seed % (2000 * attempt.min(10))))
                        .await;
                }
                Err(e) if e.code() == Some(&SqlState::CHECK_VIOLATION) => {
                    t.rejected += 1; // insufficient funds: the rule held
                    break;
                }
                Err(e) => return Err(format!("worker {n}: {e}").into()),
            }
        }
    }
    Ok(t)
}

async fn run() -> Result<ExitCode, Error> {
    let workers: u64 = option("workers", "8").parse()?;
    let operations: u64 = option("operations", "12").parse()?;
    let initial = cents(&option("initial", "100.00"))?;

    let client = connect().await?;
    let row = client
        .query_one(
            "SELECT to_regnamespace('bank') IS NOT NULL, current_database()::text",
            &[],
        )
        .await?;
    if !row.get::<_, bool>(0) {
        eprintln!(
            "database {} has no schema bank: load examples/bank.sql first (bash scripts/run.sh does, into es_demo)",
            row.get::<_, String>(1)
        );
        return Ok(ExitCode::from(2));
    }
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let account = format!("rust-{}-{millis}", std::process::id());
    client
        .execute(
            "SELECT bank.open_account($1, $2, $3::text::numeric)",
            &[&account, &"Rust workers", &money(initial)],
        )
        .await?;
    println!(
        "opened {account} with {}; {workers} workers x {operations} operations \
         (every 4th a deposit of 2.00, the others withdrawals of 1.25 to 5.00)",
        money(initial)
    );

    let start = Arc::new(Barrier::new(workers as usize));
    let tasks: Vec<_> = (0..workers)
        .map(|n| tokio::spawn(worker(n, account.clone(), operations, start.clone())))
        .collect();
    let mut tot = Totals::default();
    let mut failed = false;
    for task in tasks {
        match task.await? {
            Ok(t) => {
                tot.withdrawn += t.withdrawn;
                tot.deposited += t.deposited;
                tot.withdrawals += t.withdrawals;
                tot.deposits += t.deposits;
                tot.rejected += t.rejected;
                tot.retries += t.retries;
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Ok(ExitCode::FAILURE);
    }

    let loaded = client
        .query_one(
            "SELECT version, state->>'balance' FROM es.load($1)",
            &[&format!("account-{account}")],
        )
        .await?;
    let version: i64 = loaded.get(0);
    let balance = cents(loaded.get::<_, &str>(1))?;
    let projected = client
        .query_opt(
            "SELECT balance::text FROM bank.account_balances WHERE account_id = $1",
            &[&account],
        )
        .await?
        .map(|r| cents(r.get::<_, &str>(0)))
        .transpose()?;
    // the balance after every event, not only the last one
    let lowest = cents(
        client
            .query_one(LOWEST, &[&format!("account-{account}")])
            .await?
            .get::<_, &str>(0),
    )?;
    let expected = initial + tot.deposited - tot.withdrawn;
    let commands = 1 + tot.withdrawals + tot.deposits;

    println!(
        "accepted: {} withdrawals ({}), {} deposits ({}); rejected for insufficient funds: {}; retries after 40001: {}",
        tot.withdrawals, money(tot.withdrawn), tot.deposits, money(tot.deposited), tot.rejected, tot.retries
    );
    println!(
        "lowest balance over the {version} versions: {}",
        money(lowest)
    );
    println!(
        "final balance: {} (expected {} + {} - {} = {}; read model: {}; version {version})",
        money(balance),
        money(initial),
        money(tot.deposited),
        money(tot.withdrawn),
        money(expected),
        projected.map(money).unwrap_or_else(|| "none".into())
    );
    println!(
        "RESULT client=rust account={account} balance={} withdrawn={} deposited={} accepted={} rejected={} retries={}",
        money(balance), money(tot.withdrawn), money(tot.deposited), commands - 1, tot.rejected, tot.retries
    );
    let mut problems = Vec::new();
    if lowest < 0 {
        problems.push(format!("the balance went down to {}", money(lowest)));
    }
    if balance != expected {
        problems.push(format!(
            "the balance {} is not {}",
            money(balance),
            money(expected)
        ));
    }
    if projected != Some(balance) {
        problems.push(format!(
            "bank.account_balances says {:?}",
            projected.map(money)
        ));
    }
    if version as u64 != commands {
        problems.push(format!("the stream has {version} events, not {commands}"));
    }
    if !problems.is_empty() {
        eprintln!("FAILED: {}", problems.join("; "));
        return Ok(ExitCode::FAILURE);
    }
    println!("OK");
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

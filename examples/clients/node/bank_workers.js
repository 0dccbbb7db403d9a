#!/usr/bin/env node
// Several workers withdraw from one account at once through the bank's SQL
// functions (examples/bank.sql), retrying when they lose a race (SQLSTATE 40001).
//
// Run:  bash examples/clients/node/run.sh      (installs nodejs, npm and pg when missing)
// Needs a database with examples/bank.sql loaded: `bash scripts/run.sh` makes es_demo.
// Connection: PGHOST, PGPORT, PGUSER, PGDATABASE (default 127.0.0.1:28815, postgres, es_demo).
// Options: --workers N (8), --operations N per worker (12), --initial AMOUNT (100.00).
// Exits 0 only if the final balance is never negative and equals the opening
// balance plus the accepted deposits minus the accepted withdrawals.
'use strict';

const { Client } = require('pg');

function option(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
}

// Money as integer cents (BigInt): no floating point anywhere.
function cents(text) {
  const m = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(String(text));
  if (!m) throw new Error(`not an amount with at most 2 decimals: ${text}`);
  const v = BigInt(m[2]) * 100n + BigInt((m[3] || '0').padEnd(2, '0'));
  return m[1] ? -v : v;
}
function money(c) {
  const neg = c < 0n;
  const a = neg ? -c : c;
  return `${neg ? '-' : ''}${a / 100n}.${String(a % 100n).padStart(2, '0')}`;
}

// The lowest balance the account ever had, replaying its events in order.
const LOWEST = "SELECT min(running)::text FROM (SELECT sum(CASE event_type WHEN 'AccountOpened' THEN (data->>'initialBalance')::numeric WHEN 'MoneyDeposited' THEN (data->>'amount')::numeric WHEN 'MoneyWithdrawn' THEN -(data->>'amount')::numeric ELSE 0 END) OVER (ORDER BY version) AS running FROM es.read_stream($1)) r";

function connect() {
  const client = new Client({
    host: process.env.PGHOST || '127.0.0.1',
    port: Number(process.env.PGPORT || 28815),
    user: process.env.PGUSER || 'postgres',
    database: process.env.PGDATABASE || 'es_demo',
    application_name: 'bank-node',
  });
  return client.connect().then(() => client);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function worker(n, account, operations, start) {
  const t = { withdrawn: 0n, deposited: 0n, withdrawals: 0, deposits: 0, rejected: 0, retries: 0 };
  const client = await connect();
  try {
    await start;
    for (let i = 0; i < operations; i++) {
      const deposit = i % 4 === 3;
      const amount = deposit ? 200n : 125n * BigInt(1 + ((n + i) % 4));
      const fn = deposit ? 'bank.deposit' : 'bank.withdraw';
      for (let attempt = 0; ; attempt++) {
        if (attempt === 1000) throw new Error(`worker ${n}: gave up after 1000 serialization failures`);
        try {
          // one statement outside BEGIN/COMMIT: one transaction per command
          await client.query(`SELECT version, balance FROM ${fn}($1, $2::numeric)`, [account, money(amount)]);
        } catch (e) {
          if (e.code === '40001') {
            // another worker appended since our load: nothing was written; run it again
            t.retries++;
            await sleep(Math.random() * 2 * Math.min(attempt + 1, 10));
            continue;
          }
          if (e.code === '23514') {
            t.rejected++; // insufficient funds: the rule held
            break;
          }
          throw e;
        }
        if (deposit) { t.deposited += amount; t.deposits++; } else { t.withdrawn += amount; t.withdrawals++; }
        break;
      }
    }
  } finally {
    await client.end();
  }
  return t;
}

async function main() {
  const workers = Number(option('workers', 8));
  const operations = Number(option('operations', 12));
  const initial = cents(option('initial', '100.00'));

  const client = await connect();
  try {
    const ok = await client.query("SELECT to_regnamespace('bank') IS NOT NULL AS ok, current_database() AS db");
    if (!ok.rows[0].ok) {
      console.error(`database ${ok.rows[0].db} has no schema bank: load examples/bank.sql first (bash scripts/run.sh does, into es_demo)`);
      return 2;
    }
    const account = `node-${process.pid}-${Date.now()}`;
    await client.query('SELECT bank.open_account($1, $2, $3::numeric)', [account, 'Node.js workers', money(initial)]);
    console.log(`opened ${account} with ${money(initial)}; ${workers} workers x ${operations} operations ` +
                '(every 4th a deposit of 2.00, the others withdrawals of 1.25 to 5.00)');

    let release;
    const start = new Promise((r) => { release = r; });
    const running = [];
    for (let n = 0; n < workers; n++) running.push(worker(n, account, operations, start));
    release();
    const results = await Promise.allSettled(running);
    const failures = results.filter((r) => r.status === 'rejected');
    if (failures.length) {
      for (const f of failures) console.error(`worker failed: ${f.reason && f.reason.code ? f.reason.code + ' ' : ''}${f.reason && f.reason.message}`);
      return 1;
    }
    const tot = { withdrawn: 0n, deposited: 0n, withdrawals: 0, deposits: 0, rejected: 0, retries: 0 };
    for (const { value } of results) for (const k of Object.keys(tot)) tot[k] += value[k];

    const loaded = await client.query(
      "SELECT version, state->>'balance' AS balance FROM es.load($1)", [`account-${account}`]);
    const row = await client.query('SELECT balance FROM bank.account_balances WHERE account_id = $1', [account]);
    // the balance after every event, not only the last one
    const lowestRow = await client.query(LOWEST, [`account-${account}`]);
    const lowest = cents(lowestRow.rows[0].min);
    const version = Number(loaded.rows[0].version);
    const balance = cents(loaded.rows[0].balance);
    const projected = row.rows.length ? cents(row.rows[0].balance) : null;
    const expected = initial + tot.deposited - tot.withdrawn;
    const commands = 1 + tot.withdrawals + tot.deposits;

    console.log(`accepted: ${tot.withdrawals} withdrawals (${money(tot.withdrawn)}), ${tot.deposits} deposits ` +
                `(${money(tot.deposited)}); rejected for insufficient funds: ${tot.rejected}; retries after 40001: ${tot.retries}`);
    console.log(`lowest balance over the ${version} versions: ${money(lowest)}`);
    console.log(`final balance: ${money(balance)} (expected ${money(initial)} + ${money(tot.deposited)} - ` +
                `${money(tot.withdrawn)} = ${money(expected)}; read model: ${projected === null ? 'none' : money(projected)}; version ${version})`);
    console.log(`RESULT client=node account=${account} balance=${money(balance)} withdrawn=${money(tot.withdrawn)} ` +
                `deposited=${money(tot.deposited)} accepted=${commands - 1} rejected=${tot.rejected} retries=${tot.retries}`);
    const problems = [];
    if (lowest < 0n) problems.push(`the balance went down to ${money(lowest)}`);
    if (balance !== expected) problems.push(`the balance ${money(balance)} is not ${money(expected)}`);
    if (projected !== balance) problems.push(`bank.account_balances says ${projected === null ? 'nothing' : money(projected)}`);
    if (version !== commands) problems.push(`the stream has ${version} events, not ${commands}`);
    if (problems.length) {
      console.error(`FAILED: ${problems.join('; ')}`);
      return 1;
    }
    console.log('OK');
    return 0;
  } finally {
    await client.end();
  }
}

main().then((code) => { process.exitCode = code; }, (e) => {
  console.error(`error: ${e.code ? e.code + ' ' : ''}${e.message}`);
  process.exitCode = 1;
});

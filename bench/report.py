#!/usr/bin/env python3
"""Turn one bench run (target/bench/<stamp>/results.csv and meta) into the results
table (printed, and written as table.md) and the append-scaling chart (SVG).
Standard library only. Usage: python3 bench/report.py target/bench/<stamp>"""
import csv
import os
import sys
from collections import defaultdict

out = sys.argv[1]
meta = {}
with open(os.path.join(out, "meta")) as f:
    for line in f:
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            meta[k] = v

vals = defaultdict(list)     # (scenario, side) -> [value per round]
extra = defaultdict(lambda: [0, 0, 0])  # (scenario, side) -> [transactions, retries, failed]
notes = {}                   # scenario -> n/a or error text
clients_of = {}
foreign = []                 # share of the CPU other processes took during each kept run
with open(os.path.join(out, "results.csv")) as f:
    for r in csv.DictReader(f):
        key = (r["scenario"], r["side"])
        if r["side"] in ("na", "error"):
            notes[r["scenario"]] = r["unit"] if r["side"] == "na" else "error (see raw/)"
            continue
        vals[key].append(float(r["value"]))
        clients_of[key] = int(r["clients"] or 0)
        if r.get("foreign_cpu"):
            foreign.append(float(r["foreign_cpu"]))
        for i, col in enumerate(("transactions", "retries", "failed")):
            if r[col]:
                extra[key][i] += int(r[col])


# Derived: events/s of the fold work alone, the time per event of the query less the
# time per event of the same query with count(e) (no fold).
for scen in ("fold", "fold_sorted"):
    c = vals.get((scen, "count"))
    if c:
        tc = 1.0 / max(c)
        for side in ("es", "pl"):
            v = vals.get((scen, side))
            if v:
                t = 1.0 / max(v) - tc
                if t > 0:
                    vals[(scen, side + "-net")] = [1.0 / t]


def mean(key):
    """The figure of a side: the best of its rounds. Other processes on a shared
    machine can only slow a run down, so the best round is the closest to what
    the code can do; every round is in results.csv."""
    v = vals.get(key) if key else None
    return max(v) if v else None


def fmt(x, unit):
    if x is None:
        return "–"
    short = {"events/s": "ev/s", "reads/s": "reads/s", "loads/s": "loads/s", "MB": "MB"}.get(unit, unit)
    if unit == "MB":
        return f"{x:,.1f} MB"
    return f"{x:,.0f} {short}" if x >= 100 else f"{x:,.1f} {short}"


bank = int(meta.get("bank_events", "1000000"))
bank_s = f"{bank:,}"
E = "events/s"

# label, ours key, baseline key (or None), baseline label, ratio kind, targets, unit
#   ratio kind "thr": ours / baseline (throughput); "cost": baseline / ours (time per op)
#   targets: list of (what, op, value) with what "ratio" or "ours"
ROWS = [
    ("`es.append_event`, 1 client, random stream of 1,000", ("append_1c", "es"), ("append_1c", "bare"),
     "bare INSERT", "thr", [("ratio", ">=", 0.85)], E),
    ("`es.append_event`, 1 client", ("append_1c", "es"), ("append_1c", "pl"),
     "plpgsql append", "thr", [], E),
    ("`es.append_event`, 8 clients", ("append_8c", "es"), ("append_8c", "bare"),
     "bare INSERT", "thr", [("ratio", ">=", 0.85)], E),
    ("`es.append_event`, 8 clients", ("append_8c", "es"), ("append_8c", "pl"),
     "plpgsql append", "thr", [("ratio", ">=", 2.0)], E),
    ("`es.append_event`, 1 client", ("append_1c", "es"), ("append_1c", "barestream"),
     "bare INSERT + UPDATE of a stream row, one statement", "thr", [], E),
    ("`es.append_event`, 8 clients", ("append_8c", "es"), ("append_8c", "barestream"),
     "bare INSERT + UPDATE of a stream row, one statement", "thr", [], E),
    ("bare INSERT + UPDATE of a stream row (what es.streams costs), 1 client", ("append_design_1c", "barestream"),
     ("append_design_1c", "bare"), "bare INSERT", "thr", [], E),
    ("bare INSERT + per-stream advisory lock + last-version probe (no stream row), 1 client",
     ("append_design_1c", "barelock"), ("append_design_1c", "bare"), "bare INSERT", "thr", [], E),
    ("bare INSERT + UPDATE of a stream row (what es.streams costs), 8 clients", ("append_design_8c", "barestream"),
     ("append_design_8c", "bare"), "bare INSERT", "thr", [], E),
    ("bare INSERT + per-stream advisory lock + last-version probe (no stream row), 8 clients",
     ("append_design_8c", "barelock"), ("append_design_8c", "bare"), "bare INSERT", "thr", [], E),
    ("`es.append_event` (same run), 8 clients", ("append_design_8c", "es"), ("append_design_8c", "bare"),
     "bare INSERT", "thr", [], E),
    ("`es.append_event`, no relay (each transaction sends its NOTIFY), 1 client", ("append_1c", "esdirect"),
     ("append_1c", "bare"), "bare INSERT", "thr", [], E),
    ("`es.append_event`, no relay (each transaction sends its NOTIFY), 8 clients", ("append_8c", "esdirect"),
     ("append_8c", "bare"), "bare INSERT", "thr", [], E),
    ("`es.append_event` with `es.notify = off`, 1 client", ("append_1c", "esoff"), ("append_1c", "bare"),
     "bare INSERT", "thr", [("ratio", ">=", 0.85)], E),
    ("`es.append_event` with `es.notify = off`, 8 clients", ("append_8c", "esoff"), ("append_8c", "bare"),
     "bare INSERT", "thr", [("ratio", ">=", 0.85)], E),
    ("`es.append_event` with `es.notify = off`, 8 clients", ("append_8c", "esoff"), ("append_8c", "pl"),
     "plpgsql append", "thr", [("ratio", ">=", 2.0)], E),
    ("expected version read and checked, 1 client", ("append_ev_1c", "es"), ("append_ev_1c", "bare"),
     "bare INSERT", "thr", [("ratio", ">=", 0.8)], E),
    ("expected version read and checked, 8 clients", ("append_ev_8c", "es"), ("append_ev_8c", "bare"),
     "bare INSERT", "thr", [("ratio", ">=", 0.8)], E),
    ("expected version read and checked, 8 clients", ("append_ev_8c", "es"), ("append_ev_8c", "pl"),
     "plpgsql append, same check", "thr", [], E),
    ("expected version read and checked, 8 clients, `es.notify = off`", ("append_ev_8c", "esoff"),
     ("append_ev_8c", "bare"), "bare INSERT", "thr", [("ratio", ">=", 0.8)], E),
    ("`es.append_events`, 100 events per call, 1 client", ("append_batch", "es"), ("append_batch", "bare"),
     "100-row multi-row INSERT", "thr", [("ratio", ">=", 0.7)], E),
    ("8 clients on one stream, expected versions, retry on 40001", ("hot_stream", "es"), ("hot_stream", "pl"),
     "plpgsql append, same", "thr", [], E),
    ("snapshot trigger: append to a type with `snapshot_every` 100, 1 client",
     ("snapshot_trigger", "snap"), ("snapshot_trigger", "es"), "no aggregate defined", "cost",
     [("ratio", "<=", 1.10)], E),
    ("`es.read_stream` of 1,000 events", ("read_stream", "es"), ("read_stream", "plain"),
     "plain SELECT ... ORDER BY", "thr", [("ratio", ">=", 0.9)], "reads/s"),
    (f"`es.read_all` paging 1,000 at a time through {bank_s} events", ("read_all", "es"), ("read_all", "plain"),
     "plain SELECT ... ORDER BY ... LIMIT", "thr", [("ours", ">=", 500000)], E),
    (f"`es.fold` of {bank_s} bank events (`GROUP BY stream_id`, `ORDER BY version`)", ("fold", "es"), ("fold", "pl"),
     "plpgsql fold, same query", "thr", [("ours", ">=", 1000000), ("ratio", ">=", 10)], E),
    ("fold work alone: the row above less the same query with `count(e)` (scan, sort, row building)",
     ("fold", "es-net"), ("fold", "pl-net"), "plpgsql fold body", "thr", [], E),
    (f"`es.fold` of {bank_s} bank events fed in (stream, version) order", ("fold_sorted", "es"), ("fold_sorted", "pl"),
     "plpgsql fold, same query", "thr", [("ours", ">=", 1000000), ("ratio", ">=", 10)], E),
    ("`es.load`, 100,050-event stream vs 150-event stream, `snapshot_every` 100", ("load", "long"), ("load", "short"),
     "`es.load` of the 150-event stream", "cost", [("ratio", "<=", 1.5)], "loads/s"),
    (f"backend private memory (RssAnon) growth during the {bank_s}-event fold",
     ("fold_rss", "anon"), None, "", "none", [("ours", "<", 50)], "MB"),
    ("async projection catch-up, trivial SQL handler", ("proj_async", "es"), ("proj_async", "pl"),
     "plpgsql loop calling the handler", "thr", [("ours", ">=", 50000)], E),
    ("async projection catch-up in batches of 100, a count per day kept by an upsert: batch handler (`es.events[]`)",
     ("proj_async_daily", "batch"), ("proj_async_daily", "one"), "the same read model, one handler call per event",
     "thr", [], E),
    ("inline projection, one-row upsert handler in SQL: append cost, 1 client", ("proj_inline", "sql"),
     ("proj_inline", "es"), "append, no projection", "cost", [("ratio", "<=", 1.5)], E),
    ("inline projection, the same handler in plpgsql: append cost, 1 client", ("proj_inline", "plpgsql"),
     ("proj_inline", "es"), "append, no projection", "cost", [("ratio", "<=", 1.5)], E),
    ("built-in materializer `es.materialize_aggregate`: append cost, 1 client", ("proj_materialize", "mat"),
     ("proj_materialize", "es"), "append, no materializer", "cost", [("ratio", "<=", 1.3)], E),
    ("`es.append_event` of a 10-property event whose type has a JSON Schema, 1 client",
     ("schema_append", "schema"), ("schema_append", "none"), "the same event, no schema", "thr",
     [("ratio", ">=", 0.9)], E),
    (f"`es.read_all` with no upcaster defined, paging through {bank_s} events", ("read_all_noup", "es"),
     ("read_all_noup", "v020"), "0.2.0's `es.read_all` body", "thr", [("ratio", ">=", 0.97)], E),
    ("`es.read_all` where one rename upcaster applies to every event (100,000 events)", ("read_all_upcast", "upcast"),
     ("read_all_upcast", "raw"), "`es.read_all(..., raw => true)`", "thr", [("ratio", ">=", 0.7)], E),
    ("`es.load` of 100 events that all need a two-step upcast chain, snapshots off", ("load_upcast", "chain"),
     ("load_upcast", "none"), "100 events that need none", "cost", [("ratio", "<=", 1.3)], "loads/s"),
    ("`es.apply_retention`: keep the last 10 of each stream's 1,000 events (snapshot at each cut, audit row per stream)",
     ("retention", "es"), ("retention", "delete"), "bare DELETE of the same rows", "thr", [("ours", ">=", 100000)], E),
    ("`es.redact` of a 10,000-event stream (chain re-anchored, snapshots rebuilt, marker, audit)",
     ("redact", "es"), ("redact", "update"), "bare UPDATE with jsonb_set of the same rows", "thr",
     [("ours", ">=", 10000)], E),
    ("Message DB's `write_message` through `pg_eventsource_message_db`, 8 clients", ("message_db", "layer"),
     ("message_db", "es"), "`es.append_event` of the same event", "thr", [("ratio", ">=", 0.8)], E),
    ("Message DB's `write_message` through `pg_eventsource_message_db`, 8 clients", ("message_db", "layer"),
     ("message_db", "esid"), "`es.append_event` of the same event with a random id given, as Message DB's clients do",
     "thr", [], E),
    ("Message DB's `write_message` through `pg_eventsource_message_db`, 8 clients", ("message_db", "layer"),
     ("message_db", "messagedb"), "Message DB 1.3's own `write_message`, same server", "thr", [("ratio", ">=", 3)], E),
    ("`bank.deposit` (load, decide, append) in the bank example as shipped, 1 client", ("bank_command_1c", "deposit"),
     ("bank_command_1c", "es"), "`es.append_event` in a database with nothing else", "thr", [("ratio", ">=", 0.5)], E),
    ("`bank.deposit` (load, decide, append) in the bank example as shipped, 8 clients", ("bank_command_8c", "deposit"),
     ("bank_command_8c", "es"), "`es.append_event` in a database with nothing else", "thr", [("ratio", ">=", 0.5)], E),
    ("`bank.deposit` on an account of 10,000 events (rolled back), 1 client", ("bank_age", "old"),
     ("bank_age", "young"), "the same on an account of 10 events", "cost", [("ratio", "<=", 1.2)], "commands/s"),
    ("`es.append_event`, 8 clients, a stock server (nothing preloaded, default settings), one subscriber listening",
     ("stock_notify", "es"), ("stock_notify", "bare"), "bare INSERT, same server", "thr", [("ratio", ">=", 0.6)], E),
    ("`es.load` of a 200,000-event stream, no snapshot", ("long_fold", "load"), ("long_fold", "sql"),
     "the bare SQL aggregate over the same rows and columns (`sum((data->>'amount')::numeric), count(event_type)`)",
     "cost", [("ratio", "<=", 2)], "folds/s"),
    ("`es.load` of a 200,000-event stream, no snapshot", ("long_fold", "load"), ("long_fold", "sqlserial"),
     "the same bare SQL aggregate without parallel workers (one process, as the load)", "cost", [], "folds/s"),
    ("`es.fold(e ORDER BY version)` of the same stream", ("long_fold", "fold"), ("long_fold", "sql"),
     "the bare SQL aggregate over the same rows and columns", "cost", [], "folds/s"),
    ("`es.fold` column form (`stream_id, stream_type, version, event_type, data, metadata, schema_version`) of the same stream",
     ("long_fold", "columns"), ("long_fold", "sql"),
     "the bare SQL aggregate over the same rows and columns", "cost", [("ratio", "<=", 2)], "folds/s"),
    ("`es.fold` column form over an ordered subquery of the same stream", ("long_fold", "ordered"), ("long_fold", "sql"),
     "the bare SQL aggregate over the same rows and columns", "cost", [], "folds/s"),
    ("`es.fold` column form, every stream of 1,000,000 events grouped by stream", ("grouped_fold", "columns"),
     ("grouped_fold", "sql"), "the bare SQL aggregate of each stream's balance (PostgreSQL's own plan)", "cost",
     [("ratio", "<=", 2)], E),
    ("`es.fold` column form, every stream of 1,000,000 events grouped by stream", ("grouped_fold", "columns"),
     ("grouped_fold", "sqlserial"), "the same bare SQL aggregate without parallel workers (one process, as the fold)",
     "cost", [], E),
    ("`es.fold(e)` (rows), every stream of 1,000,000 events grouped by stream", ("grouped_fold", "rows"),
     ("grouped_fold", "sql"), "the bare SQL aggregate of each stream's balance (PostgreSQL's own plan)", "cost", [], E),
    ("`es.append_event` through a router (`pg_eventsource_router`, PL/Proxy over TCP) to one partition database, 1 client",
     ("router_1c", "router"), ("router_1c", "direct"), "the same append straight into that database", "thr", [], E),
    ("`es.append_event` through a router (`pg_eventsource_router`, PL/Proxy over TCP) to one partition database, 8 clients",
     ("router_8c", "router"), ("router_8c", "direct"), "the same append straight into that database", "thr", [], E),
    ("`es.append_event` through a router over 16 logical partitions in 2 databases of this server, 8 clients",
     ("router_scaling", "p2"), ("router_scaling", "p1"), "the same router layout in 1 database", "thr", [], E),
    ("`es.append_event` through a router over 16 logical partitions in 4 databases of this server, 8 clients",
     ("router_scaling", "p4"), ("router_scaling", "p1"), "the same router layout in 1 database", "thr", [], E),
    ("`es.load` of a state of about 100 KB (1,000-entry list; 10 events after its snapshot)", ("big_load", "m"),
     ("big_load", "s"), "a 10-entry state (10 events, no snapshot)", "cost", [], "loads/s"),
    ("`es.load` of a state of about 1 MB (10,000-entry list; 10 events after its snapshot)", ("big_load", "l"),
     ("big_load", "s"), "a 10-entry state (10 events, no snapshot)", "cost", [], "loads/s"),
    ("append that takes a snapshot of about 10 KB (100 events folded)", ("big_snapshot", "s"),
     ("big_snapshot", "n"), "an append that takes none", "cost", [], "appends/s"),
    ("append that takes a snapshot of about 110 KB (100 events folded onto 1,000)", ("big_snapshot", "m"),
     ("big_snapshot", "n"), "an append that takes none", "cost", [], "appends/s"),
    ("append that takes a snapshot of about 1 MB (100 events folded onto 10,000)", ("big_snapshot", "l"),
     ("big_snapshot", "n"), "an append that takes none", "cost", [], "appends/s"),
    ("Python `eventsourcing`: its own `AggregateRecorderTestCase.test_performance` (100 single-event inserts; the snapshots' recorder)",
     ("lib_aggregate_insert", "ours"), ("lib_aggregate_insert", "stock"), "the library's stock PostgreSQL module", "thr", [], "inserts/s"),
    ("Python `eventsourcing`: its own `ApplicationRecorderTestCase.test_performance` (with notification ids)",
     ("lib_application_insert", "ours"), ("lib_application_insert", "stock"), "the library's stock PostgreSQL module", "thr", [], "inserts/s"),
    ("Python `eventsourcing`: its own `ProcessRecorderTestCase.test_performance` (events and tracking)",
     ("lib_process_insert", "ours"), ("lib_process_insert", "stock"), "the library's stock PostgreSQL module", "thr", [], "inserts/s"),
    ("Python `eventsourcing`: its own `test_concurrent_throughput` (4 threads, 50 events per insert)",
     ("lib_concurrent_throughput", "ours"), ("lib_concurrent_throughput", "stock"), "the library's stock PostgreSQL module", "thr", [], "events/s"),
    ("Python `eventsourcing`: `select_events` of a 100-event aggregate",
     ("lib_select_events_100", "ours"), ("lib_select_events_100", "stock"), "the library's stock PostgreSQL module", "thr", [], "reads/s"),
    ("Python `eventsourcing`: paging `select_notifications` 500 at a time through 20,000 events",
     ("lib_select_notifications", "ours"), ("lib_select_notifications", "stock"), "the library's stock PostgreSQL module", "thr", [], E),
]


def target_text(targets, unit, kind):
    parts = []
    for what, op, v in targets:
        sym = {">=": "≥", "<=": "≤", "<": "<"}[op]
        if what == "ratio":
            parts.append(f"{sym} {v:g}×" if kind == "thr" else f"cost {sym} {v:g}×")
        else:
            parts.append(f"{sym} {fmt(v, unit)}")
    return " and ".join(parts) if parts else "report"


def check(op, a, b):
    return {">=": a >= b, "<=": a <= b, "<": a < b}[op]


lines = []
lines.append(f"- pg_eventsource benchmarks, {meta.get('date')}, commit {meta.get('commit')}")
lines.append(f"- machine: {meta.get('nproc')} cores ({meta.get('cpu')}), {meta.get('mem')}, "
             f"PostgreSQL {meta.get('pg')}, default settings")
lines.append(f"- command: `{meta.get('command')}` (pgbench -M prepared -T {meta.get('seconds')}, "
             f"{meta.get('rounds')} round(s) per side, sides alternated; each figure is the best of its rounds)")
lines.append("")
lines.append("| scenario | ours | baseline | ratio | target | met? |")
lines.append("|---|---|---|---|---|---|")
summary = {"met": 0, "missed": 0}
for label, ok, bk, blabel, kind, targets, unit in ROWS:
    scen = ok[0]
    if scen in notes and ok not in vals:
        lines.append(f"| {label} | {notes[scen]} | | | {target_text(targets, unit, kind)} | n/a |")
        continue
    o, b = mean(ok), mean(bk)
    if o is None:
        lines.append(f"| {label} | not run | | | {target_text(targets, unit, kind)} | – |")
        continue
    ratio = None
    if b and o and kind == "thr":
        ratio = o / b
    elif b and o and kind == "cost":
        ratio = b / o
    ocell = fmt(o, unit)
    if scen in ("hot_stream", "append_ev_8c", "append_ev_1c"):
        tx, retries, failed = extra[ok]
        if tx:
            ocell += f", {100.0 * retries / (tx + retries):.1f}% conflicts"
    bcell = fmt(b, unit) if b is not None else "–"
    if scen == "fold_rss":
        h, sh, fi = mean(("fold_rss", "hwm")), mean(("fold_rss", "shmem")), mean(("fold_rss", "file"))
        if h is not None:
            bcell = (f"VmHWM +{h:,.0f} MB: shared buffers mapped +{sh or 0:,.0f} MB, "
                     f"mapped files (JIT) +{fi or 0:,.0f} MB")
    elif blabel:
        bcell = f"{bcell} ({blabel})"
    if scen in ("hot_stream",) and bk in extra and extra[bk][0]:
        tx, retries, failed = extra[bk]
        bcell = f"{fmt(b, unit)}, {100.0 * retries / (tx + retries):.1f}% conflicts ({blabel})"
    rcell = "–" if ratio is None else (f"{ratio:.2f}×" if kind == "thr" else f"cost {ratio:.2f}×")
    met = "–"
    if targets:
        ok_all = True
        for what, op, v in targets:
            x = ratio if what == "ratio" else o
            if x is None or not check(op, x, v):
                ok_all = False
        met = "yes" if ok_all else "**no**"
        summary["met" if ok_all else "missed"] += 1
    lines.append(f"| {label} | {ocell} | {bcell} | {rcell} | {target_text(targets, unit, kind)} | {met} |")
lines.append("")
if foreign:
    foreign.sort()
    lines.append(f"- Other processes on the machine took a median {100 * foreign[len(foreign) // 2]:.0f}% "
                 f"(at most {100 * foreign[-1]:.0f}%) of its CPU during the pgbench runs kept "
                 + (f"(a run over 15% is repeated, up to {meta.get('attempts', '3')} times, keeping the quietest)."
                    if meta.get("attempts", "3") != "1" else "(runs are not repeated with --quick)."))
lines.append(f"- {summary['met']} targets met, {summary['missed']} missed; run took {meta.get('elapsed', '?')} s; "
             f"load average at start {meta.get('load_start', '?')}, at end {meta.get('load_end', '?')}.")
text = "\n".join(lines)
print(text)
with open(os.path.join(out, "table.md"), "w") as f:
    f.write(text + "\n")

# ---------------------------------------------------------------- the chart
clients = [1, 2, 4, 8, 16]
series = [("es", "es.append_event", "#1f77b4", ""), ("esoff", "… with es.notify = off", "#1f77b4", "6 4"),
          ("esdirect", "… without the relay", "#1f77b4", "2 3"),
          ("bare", "bare INSERT", "#2ca02c", ""), ("pl", "plpgsql append", "#d62728", "")]
points = {}
for side, _, _, _ in series:
    pts = []
    for c in clients:
        v = mean((f"append_{c}c", side))
        if v is not None:
            pts.append((c, v))
    points[side] = pts
if any(points.values()):
    W, H, L, R, T, B = 700, 400, 80, 210, 50, 50
    ymax = max(v for pts in points.values() for _, v in pts)
    step = 10 ** len(str(int(ymax))) / 10
    for m in (1, 2, 5, 10):
        if ymax / (step * m / 1) <= 8:
            step = step * m
            break
    ytop = step * (int(ymax / step) + 1)

    def px(c):
        return L + (W - L - R) * clients.index(c) / (len(clients) - 1)

    def py(v):
        return T + (H - T - B) * (1 - v / ytop)

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         f'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2 - R / 2 + L / 2}" y="22" text-anchor="middle" font-size="14">'
         f'Append throughput by client count (1 event per transaction)</text>',
         f'<text x="{W / 2}" y="38" text-anchor="middle" fill="#555" font-size="10">'
         f'{meta.get("date")}, commit {meta.get("commit")}, {meta.get("nproc")} cores, PostgreSQL '
         f'{meta.get("pg", "").split(" ")[0]}, synchronous_commit on</text>']
    y = 0.0
    while y <= ytop + 1e-9:
        s.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:,.0f}</text>')
        y += step
    for c in clients:
        s.append(f'<line x1="{px(c):.1f}" y1="{H - B}" x2="{px(c):.1f}" y2="{H - B + 5}" stroke="#333"/>')
        s.append(f'<text x="{px(c):.1f}" y="{H - B + 18}" text-anchor="middle">{c}</text>')
    s.append(f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="#333"/>')
    s.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="#333"/>')
    s.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">pgbench clients</text>')
    s.append(f'<text transform="translate(16 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle">events/s</text>')
    for i, (side, name, color, dash) in enumerate(series):
        pts = points[side]
        if not pts:
            continue
        da = f' stroke-dasharray="{dash}"' if dash else ""
        if pts:
            s.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{da} points="'
                     + " ".join(f"{px(c):.1f},{py(v):.1f}" for c, v in pts) + '"/>')
            for c, v in pts:
                s.append(f'<circle cx="{px(c):.1f}" cy="{py(v):.1f}" r="3.5" fill="{color}"/>')
        ly = T + 10 + i * 22
        s.append(f'<line x1="{W - R + 15}" y1="{ly}" x2="{W - R + 40}" y2="{ly}" stroke="{color}" stroke-width="2"{da}/>')
        s.append(f'<text x="{W - R + 46}" y="{ly + 4}">{name}</text>')
    s.append("</svg>")
    with open(os.path.join(out, "append-scaling.svg"), "w") as f:
        f.write("\n".join(s) + "\n")

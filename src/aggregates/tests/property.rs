//! In-backend tests of aggregates: property test: random bank streams folded with and without snapshots.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of aggregates::tests, and through them the harness's.
    use super::super::*;
    use pgrx::prelude::*;

    // ---- 7. property: random bank streams -------------------------------

    /// A deterministic pseudo-random generator (64-bit LCG, high bits).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// mantissa × 10^-scale, as the reducers' exact decimals.
    #[derive(Clone, Copy)]
    struct Dec {
        m: i128,
        s: u32,
    }

    impl Dec {
        fn op(self, o: Dec, negate: bool) -> Dec {
            let s = self.s.max(o.s);
            let a = self.m * 10i128.pow(s - self.s);
            let b = o.m * 10i128.pow(s - o.s);
            Dec {
                m: if negate { a - b } else { a + b },
                s,
            }
        }

        fn text(self) -> String {
            let digits = self.m.unsigned_abs().to_string();
            let sign = if self.m < 0 { "-" } else { "" };
            let s = self.s as usize;
            if s == 0 {
                format!("{sign}{digits}")
            } else if digits.len() <= s {
                format!("{sign}0.{}{digits}", "0".repeat(s - digits.len()))
            } else {
                let (i, f) = digits.split_at(digits.len() - s);
                format!("{sign}{i}.{f}")
            }
        }
    }

    /// The test's own model of the account reducers below.
    #[derive(Clone, Default)]
    struct Account {
        owner: Option<String>,
        balance: Option<Dec>,
        active: Option<bool>,
        memos: Option<Vec<String>>,
        count: i64,
        last_type: Option<String>,
    }

    impl Account {
        fn apply(&mut self, ty: &str, owner: &str, amount: Option<Dec>, memo: Option<&str>) {
            match ty {
                "AccountOpened" => {
                    self.owner = Some(owner.to_owned());
                    self.balance = Some(Dec { m: 0, s: 0 });
                    self.active = Some(true);
                }
                "MoneyDeposited" | "MoneyWithdrawn" => {
                    let cur = self.balance.unwrap_or(Dec { m: 0, s: 0 });
                    self.balance = Some(cur.op(amount.unwrap(), ty == "MoneyWithdrawn"));
                }
                "AccountClosed" => self.active = Some(false),
                "OwnerChanged" => self.owner = Some(owner.to_owned()),
                "MemoAdded" => {
                    if let Some(m) = memo {
                        self.memos.get_or_insert_with(Vec::new).push(m.to_owned());
                    }
                }
                _ => {}
            }
            self.count += 1;
            self.last_type = Some(ty.to_owned());
        }

        fn json(&self, version: i64) -> String {
            if version == 0 {
                return "{}".to_owned();
            }
            let mut f = Vec::new();
            if let Some(o) = &self.owner {
                f.push(format!(r#""owner": "{o}""#));
            }
            if let Some(b) = self.balance {
                f.push(format!(r#""balance": {}"#, b.text()));
            }
            if let Some(a) = self.active {
                f.push(format!(r#""isActive": {a}"#));
            }
            if let Some(m) = &self.memos {
                let items: Vec<String> = m.iter().map(|x| format!("\"{x}\"")).collect();
                f.push(format!(r#""memos": [{}]"#, items.join(", ")));
            }
            f.push(format!(r#""transactionCount": {}"#, self.count));
            f.push(format!(r#""lastVersion": {version}"#));
            if let Some(t) = &self.last_type {
                f.push(format!(r#""lastType": "{t}""#));
            }
            format!("{{{}}}", f.join(", "))
        }
    }

    const PROP_REDUCERS: &str = r#"{
        "AccountOpened": [{"set": "owner", "from": "$.owner"}, {"set": "balance", "value": 0},
                          {"set": "isActive", "value": true}],
        "MoneyDeposited": [{"add": "balance", "from": "$.amount"}],
        "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}],
        "AccountClosed": [{"set": "isActive", "value": false}],
        "OwnerChanged": [{"set": "owner", "from": "$.owner"}],
        "MemoAdded": [{"append": "memos", "from": "$.memo"}],
        "*": [{"inc": "transactionCount"}, {"set": "lastVersion", "from": "$version"},
              {"set": "lastType", "from": "$event_type"}]
    }"#;

    #[pg_test]
    fn random_streams_load_as_the_model_at_every_version() {
        const STREAMS: usize = 6;
        const TOTAL: usize = 260;
        let mut rng = Lcg(0x5eed_2024_0a23);
        let owners = ["Ann", "Bo", "Zoë", "O'Neil", "Chen Wei"];
        let (mut rev, mut every) = (1i64, 4i64);
        define_reducers("prop_a23", PROP_REDUCERS, "{}", every as i32);

        let ids: Vec<String> = (0..STREAMS).map(|i| format!("prop_a23-{i}")).collect();
        // per stream: the model's state after every version (index = version)
        let mut states: Vec<Vec<String>> = vec![vec![Account::default().json(0)]; STREAMS];
        let mut models: Vec<Account> = vec![Account::default(); STREAMS];
        let mut snaps: Vec<Vec<(i64, i64)>> = vec![Vec::new(); STREAMS];
        let mut appended = 0usize;
        let mut redefined = false;

        while appended < TOTAL {
            if !redefined && appended >= TOTAL / 2 {
                // same reducers, new revision and cadence: old snapshots are dropped
                // from use, the states must not change
                rev += 1;
                every = 3;
                define_reducers("prop_a23", PROP_REDUCERS, "{}", every as i32);
                redefined = true;
            }
            let k = rng.below(STREAMS as u64) as usize;
            let n = 1 + rng.below(5) as usize;
            let start = (states[k].len() - 1) as i64;
            let mut items = Vec::new();
            for j in 0..n {
                let version = start + 1 + j as i64;
                let ty = if version == 1 {
                    "AccountOpened"
                } else {
                    match rng.below(100) {
                        0..=39 => "MoneyDeposited",
                        40..=69 => "MoneyWithdrawn",
                        70..=79 => "MemoAdded",
                        80..=89 => "OwnerChanged",
                        90..=94 => "AccountClosed",
                        _ => "AccountOpened",
                    }
                };
                let owner = owners[rng.below(owners.len() as u64) as usize];
                let (data, amount, memo) = match ty {
                    "MoneyDeposited" | "MoneyWithdrawn" => {
                        let scale = rng.below(4) as u32;
                        let range = if rng.below(10) == 0 { 1_000_000 } else { 2_000 };
                        let int = rng.below(range);
                        let frac = rng.below(10u64.pow(scale));
                        let d = Dec {
                            m: int as i128 * 10i128.pow(scale) + frac as i128,
                            s: scale,
                        };
                        (format!(r#"{{"amount": {}}}"#, d.text()), Some(d), None)
                    }
                    "AccountOpened" | "OwnerChanged" => {
                        (format!(r#"{{"owner": "{owner}"}}"#), None, None)
                    }
                    "MemoAdded" => {
                        if rng.below(2) == 0 {
                            let m = format!("memo {version}");
                            (format!(r#"{{"memo": "{m}"}}"#), None, Some(m))
                        } else {
                            // no memo: the append step is skipped
                            (r#"{"note": 1}"#.to_owned(), None, None)
                        }
                    }
                    _ => ("{}".to_owned(), None, None),
                };
                models[k].apply(ty, owner, amount, memo.as_deref());
                states[k].push(models[k].json(version));
                if version % every == 0 {
                    snaps[k].push((rev, version));
                }
                items.push((ty, data));
            }
            let expected = match rng.below(3) {
                0 => start.to_string(),
                _ => "NULL".to_owned(),
            };
            let sid = &ids[k];
            let got = if n == 1 && rng.below(2) == 0 {
                let (ty, data) = &items[0];
                one_i64(&format!(
                    "SELECT es.append_event('{sid}', '{ty}', $d${data}$d$, expected_version => {expected})"
                ))
            } else {
                let batch: Vec<String> = items
                    .iter()
                    .map(|(ty, data)| format!(r#"{{"type": "{ty}", "data": {data}}}"#))
                    .collect();
                one_i64(&format!(
                    "SELECT es.append_events('{sid}', $d$[{}]$d$, expected_version => {expected})",
                    batch.join(", ")
                ))
            };
            assert_eq!(got, start + n as i64);
            appended += n;
        }

        for k in 0..STREAMS {
            let sid = &ids[k];
            let last = (states[k].len() - 1) as i64;
            if last == 0 {
                continue;
            }
            // the model's states, as jsonb text, "version state" per line
            let expected = one_text(&format!(
                "SELECT string_agg((o - 1) || ' ' || x::text, E'\\n' ORDER BY o)
                   FROM jsonb_array_elements($j$[{}]$j$) WITH ORDINALITY t(x, o)",
                states[k].join(",")
            ));
            let expected_lines: Vec<&str> = expected.lines().collect();
            // es.load at every version (from snapshots)
            let loaded = one_text(&format!(
                "SELECT string_agg(l.version || ' ' || l.state::text, E'\\n' ORDER BY v)
                   FROM generate_series(0, {last}) v, LATERAL es.load('{sid}', v) l"
            ));
            for (v, (got, want)) in loaded.lines().zip(&expected_lines).enumerate() {
                assert_eq!(got, *want, "es.load('{sid}', {v})");
            }
            assert_eq!(loaded.lines().count(), expected_lines.len(), "{sid}");
            // es.fold over the events up to every version (no snapshots)
            let folded = one_text(&format!(
                "SELECT string_agg(v || ' ' || (SELECT es.fold(e ORDER BY e.version)::text FROM es.events e
                                                 WHERE e.stream_id = '{sid}' AND e.version <= v),
                                   E'\\n' ORDER BY v)
                   FROM generate_series(1, {last}) v"
            ));
            for (i, (got, want)) in folded.lines().zip(&expected_lines[1..]).enumerate() {
                assert_eq!(got, *want, "es.fold of '{sid}' up to {}", i + 1);
            }
            assert_eq!(folded.lines().count(), last as usize, "{sid}");
            // the balance, exactly as the model has it
            if let Some(b) = models[k].balance {
                assert_eq!(
                    one_text(&format!("SELECT state->>'balance' FROM es.load('{sid}')")),
                    b.text(),
                    "{sid}"
                );
            }
            // snapshots: exactly where due, each holding the model's state
            let want: Vec<String> = snaps[k].iter().map(|(r, v)| format!("{r}:{v}")).collect();
            assert_eq!(
                one_text(&format!(
                    "SELECT coalesce(string_agg(revision || ':' || version, ',' ORDER BY revision, version), '')
                       FROM es.snapshots WHERE stream_id = '{sid}'"
                )),
                want.join(","),
                "snapshots of {sid}"
            );
            let snap_states = one_text(&format!(
                "SELECT coalesce(string_agg(version || ' ' || state::text, E'\\n' ORDER BY revision, version), '')
                   FROM es.snapshots WHERE stream_id = '{sid}'"
            ));
            for line in snap_states.lines() {
                let v: usize = line.split(' ').next().unwrap().parse().unwrap();
                assert_eq!(line, expected_lines[v], "snapshot of {sid}");
            }
            assert_eq!(one_i64(&format!("SELECT es.stream_version('{sid}')")), last);
        }
        assert_eq!(
            one_i64("SELECT revision FROM es.aggregates WHERE stream_type = 'prop_a23'"),
            2
        );
        // the run really exercised snapshots of both revisions
        assert!(snaps.iter().flatten().filter(|(r, _)| *r == 1).count() >= 10);
        assert!(snaps.iter().flatten().filter(|(r, _)| *r == 2).count() >= 10);
    }
}

-- the bare SQL aggregate a user writes for every account's balance: the same
-- rows, the columns the reducers read, PostgreSQL's own plan
SELECT count(b) FROM (SELECT stream_id,
                             sum(CASE WHEN event_type = 'MoneyWithdrawn' THEN -(data->>'amount')::numeric
                                      ELSE (data->>'amount')::numeric END) AS b,
                             count(data->>'owner')
                        FROM es.events GROUP BY stream_id) s;

#!/usr/bin/env python3
"""A subscriber: LISTEN es_events and read every notification until SIGTERM,
then print how many arrived. Used by bench/run.sh's stock_notify scenario.
Usage: listen.py HOST PORT DB"""
import signal
import sys

import psycopg

conn = psycopg.connect(host=sys.argv[1], port=sys.argv[2], dbname=sys.argv[3], user="postgres",
                       autocommit=True)
conn.execute("LISTEN es_events")
count = 0
stop = False


def done(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, done)
while not stop:
    for _ in conn.notifies(timeout=0.2):
        count += 1
print(count, flush=True)

#!/usr/bin/env python3
"""The callers of bench/reserve: times POST /api/token on the token server as browsers
would ask for it, and prints one JSON object.

usage: reserve_load.py URL SECRET --count N (--interval-ms MS | --burst B --period-ms MS) [--healthz]

  --interval-ms  one caller on a keep-alive connection, one request every MS (on a
                 fixed schedule: a late answer does not push the next request back)
  --burst        B callers, each on its own keep-alive connection, all asking at once
                 every MS, until N requests have been answered
  --healthz      GET /healthz instead: the floor of the path (this caller's own HTTP
                 and the server's), which a token cannot beat

Every answer must be 200 with a token; otherwise it exits 1. (bench/reserve's nginx
answers every request with the same token: that each is handed out once is the tests'
to check.) Latency is from just before the
request is written to the end of its body, exact quantiles. Bounded: N requests, each
with a 10 s socket timeout."""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


def quantile(sorted_values, q):
    # The nearest rank: the smallest value with at least q of the values at or below it.
    rank = max(1, -(-len(sorted_values) * q // 1))
    return sorted_values[int(rank) - 1]


class caller:
    healthz = False

    def __init__(self, url, secret):
        parts = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        self.headers = {"Authorization": "Bearer " + secret, "Content-Length": "0"}

    def ask(self):
        method, path = ("GET", "/healthz") if caller.healthz else ("POST", "/api/token")
        start = time.perf_counter()
        self.connection.request(method, path, headers=self.headers)
        answer = self.connection.getresponse()
        body = answer.read()
        elapsed = time.perf_counter() - start
        if answer.status != 200:
            raise SystemExit(f"reserve_load: HTTP {answer.status}: {body[:200]!r}")
        return elapsed, json.loads(body)["status" if caller.healthz else "token"]


def paced(url, secret, count, interval):
    one = caller(url, secret)
    results = []
    begin = time.perf_counter()
    for i in range(count):
        # A fixed schedule, as independent callers arrive: not a wait for anything.
        # Sleeps until 2 ms before, then spins: the caller's own wake-up from sleep
        # (about 0.5 ms on an idle machine here) is not the server's latency.
        due = begin + i * interval
        delay = due - 0.002 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        while time.perf_counter() < due:
            pass
        results.append(one.ask())
    return results


def bursts(url, secret, count, burst, period):
    callers = [caller(url, secret) for _ in range(burst)]
    results = []
    lock = threading.Lock()
    rounds = -(-count // burst)
    start = threading.Barrier(burst + 1)

    def run(c):
        for _ in range(rounds):
            start.wait()
            outcome = c.ask()
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in callers]
    for t in threads:
        t.start()
    begin = time.perf_counter()
    for r in range(rounds):
        delay = begin + r * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        start.wait(timeout=30)
    for t in threads:
        t.join(timeout=30)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("secret")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--interval-ms", type=float)
    parser.add_argument("--burst", type=int)
    parser.add_argument("--period-ms", type=float)
    parser.add_argument("--healthz", action="store_true")
    args = parser.parse_args()
    caller.healthz = args.healthz
    if args.interval_ms is not None:
        results = paced(args.url, args.secret, args.count, args.interval_ms / 1000)
    elif args.burst and args.period_ms:
        results = bursts(args.url, args.secret, args.count, args.burst, args.period_ms / 1000)
    else:
        parser.error("--interval-ms, or --burst and --period-ms")
    if len(results) != -(-args.count // (args.burst or 1)) * (args.burst or 1) or not all(t for _, t in results):
        raise SystemExit("reserve_load: answers missing or without a token")
    latencies = sorted(elapsed * 1000 for elapsed, _ in results)
    print(json.dumps({
        "count": len(latencies),
        "p50_ms": round(quantile(latencies, 0.50), 3),
        "p90_ms": round(quantile(latencies, 0.90), 3),
        "p99_ms": round(quantile(latencies, 0.99), 3),
        "max_ms": round(latencies[-1], 3),
    }))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Turns the text output of wrk or openssl s_time (wrapped in /usr/bin/time -f "TIME %U %S")
into one JSON line with the keys bench/report.py reads."""
import json
import re
import sys


def cpu_seconds(text):
    match = re.search(r"TIME ([\d.]+) ([\d.]+)", text)
    return float(match.group(1)) + float(match.group(2))


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(text, concurrency, duration):
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        match = re.search(pattern, text)
        if match:
            errors += sum(int(g) for g in match.groups())
    latency = {}
    for name, key in (("50%", "p50"), ("90%", "p90"), ("99%", "p99")):
        match = re.search(re.escape(name) + r"\s+([\d.]+)(us|ms|s)\b", text)
        latency[key] = to_ms(*match.groups()) if match else None
    match = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", text)
    latency["max"] = to_ms(*match.groups()) if match else None
    tokens = requests - errors
    cpu = cpu_seconds(text)
    return {"client": "wrk", "concurrency": concurrency, "tokens": tokens, "errors": errors, "seconds": duration,
            "tokens_per_s": tokens / duration, "cpu_s": cpu, "cpu_us_per_token": cpu * 1e6 / max(tokens, 1),
            "latency_ms": latency}


def s_time(text, concurrency, duration, client="openssl-s_time-new"):
    match = re.search(r"(\d+) connections in ([\d.]+)s", text) or re.search(r"(\d+) connections in (\d+) real seconds", text)
    handshakes = int(match.group(1))
    cpu = cpu_seconds(text)
    return {"client": client, "concurrency": 1, "tokens": handshakes, "errors": 0, "seconds": duration,
            "tokens_per_s": handshakes / duration, "cpu_s": cpu, "cpu_us_per_token": cpu * 1e6 / max(handshakes, 1),
            "latency_ms": {}}


if __name__ == "__main__":
    tool, concurrency, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    text = sys.stdin.read()
    s_time_www = lambda t, c, d: s_time(t, c, d, "openssl-s_time-new-www")
    print(json.dumps({"wrk": wrk, "s_time": s_time, "s_time_www": s_time_www}[tool](text, concurrency, duration)))

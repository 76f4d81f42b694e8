#!/usr/bin/env python3
"""Reads the JSON lines of one bench/compare run; prints the comparison table with the
targets of the throughput issue, and writes the figures (JSON) and a chart (SVG)."""
import json
import sys

import svg_util

CLIENTS = [("cartesia-pooled", "cartesia pooled", "#1f77b4"), ("libcurl", "libcurl multi", "#d62728"),
           ("wrk", "wrk", "#7f7f7f"), ("cartesia-oneshot", "cartesia one-shot", "#2ca02c")]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def pick(rows, client, concurrency=None):
    for row in rows:
        if row["client"] == client and (concurrency is None or row["concurrency"] == concurrency):
            return row
    return None


def table(rows):
    lines = ["| client | concurrency | tokens/s | CPU us/token | CPU vs wrk | CPU vs libcurl | p50 ms | p99 ms | errors | allocs/token |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def fmt(value, spec):
        return format(value, spec) if isinstance(value, (int, float)) else "-"

    def ratio_to(row, other):
        ref = pick(rows, other, row["concurrency"])
        if ref is None or other == row["client"] or not ref["cpu_us_per_token"]:
            return None
        return row["cpu_us_per_token"] / ref["cpu_us_per_token"]

    for row in rows:
        lat = row.get("latency_ms", {})
        lines.append(f"| {row['client']} | {row['concurrency']} | {row['tokens_per_s']:.0f} | "
                     f"{row['cpu_us_per_token']:.1f} | {fmt(ratio_to(row, 'wrk'), '.2f')} | "
                     f"{fmt(ratio_to(row, 'libcurl'), '.2f')} | {fmt(lat.get('p50'), '.3f')} | "
                     f"{fmt(lat.get('p99'), '.3f')} | {row['errors']} | {fmt(row.get('allocations_per_token'), '.1f')} |")
    return "\n".join(lines)


def targets(rows):
    out = []

    def ratio(a, b):
        return a / b if a is not None and b else None

    def line(name, value, limit, better="<="):
        if value is None:
            out.append(f"- {name}: not measured")
            return
        ok = value <= limit if better == "<=" else value >= limit
        out.append(f"- {name}: {value:.2f} (target {better} {limit}) {'met' if ok else 'NOT met'}")

    ours64, curl64, wrk64 = pick(rows, "cartesia-pooled", 64), pick(rows, "libcurl", 64), pick(rows, "wrk", 64)
    cpu = lambda r: r["cpu_us_per_token"] if r else None
    line("pooled c=64 CPU/token vs libcurl", ratio(cpu(ours64), cpu(curl64)), 0.6)
    line("pooled c=64 CPU/token vs wrk", ratio(cpu(ours64), cpu(wrk64)), 1.5)
    ours1, wrk1 = pick(rows, "cartesia-pooled", 1), pick(rows, "wrk", 1)
    p50 = lambda r: r["latency_ms"].get("p50") if r else None
    line("pooled c=1 p50 latency vs wrk", ratio(p50(ours1), p50(wrk1)), 1.3)
    oneshot1, s_time = pick(rows, "cartesia-oneshot", 1), pick(rows, "openssl-s_time-new")
    line("one-shot c=1 CPU/token vs s_time -new per handshake", ratio(cpu(oneshot1), cpu(s_time)), 1.2)
    s_time_www = pick(rows, "openssl-s_time-new-www")
    if s_time_www and oneshot1:
        out.append(f"- for reference, one-shot c=1 CPU/token vs s_time -new -www (handshake + one HTTP request): "
                   f"{ratio(cpu(oneshot1), cpu(s_time_www)):.2f}")
    resumed, oneshot8 = pick(rows, "cartesia-pooled-resumed"), pick(rows, "cartesia-oneshot", 8)
    line("new connection: full handshake / resumed (c=8)", ratio(cpu(oneshot8), cpu(resumed)), 1.8, ">=")
    steady = pick(rows, "cartesia-pooled", 64)
    if steady and steady.get("allocations_per_token") is not None:
        out.append(f"- steady-state heap allocations per token, OpenSSL's included (pooled c=64): "
                   f"{steady['allocations_per_token']:.1f} (aim <= 6)")
    queued = pick(rows, "cartesia-pooled-queued")
    if queued and steady:
        pending = queued["concurrency"] - steady["concurrency"]
        per_pending = (queued["peak_rss_kb"] - steady["peak_rss_kb"]) / pending
        out.append(f"- {queued['concurrency']:,} in flight on {queued['connections']} connections: "
                   f"{queued['errors']} errors in {queued['tokens']:,} tokens; memory per pending request "
                   f"(peak RSS over pooled c=64) {per_pending:.2f} KiB (aim <= 2)")
    return "\n".join(out)


def chart(rows, path):
    width, height, margin = 900, 380, 60
    panel_w = (width - 3 * margin) / 2
    concurrencies = [1, 8, 64]
    svg = svg_util.start(width, height)

    def panel(index, key, title):
        x0 = margin + index * (panel_w + margin)
        y0, y1 = 40, height - margin
        series = {c: [pick(rows, c, n) for n in concurrencies] for c, _, _ in CLIENTS}
        values = [r[key] for s in series.values() for r in s if r]
        top = max(values) * 1.1 if values else 1
        svg.append(f'<text x="{x0 + panel_w / 2}" y="24" text-anchor="middle" font-weight="bold">{title}</text>')
        svg.append(f'<line x1="{x0}" y1="{y1}" x2="{x0 + panel_w}" y2="{y1}" stroke="black"/>')
        svg.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>')
        for i in range(5):
            v = top * i / 4
            y = y1 - (y1 - y0) * i / 4
            svg.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end">{v:.0f}</text>')
            svg.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + panel_w}" y2="{y}" stroke="#eee"/>')
        xs = [x0 + panel_w * (i + 0.5) / len(concurrencies) for i in range(len(concurrencies))]
        for x, n in zip(xs, concurrencies):
            svg.append(f'<text x="{x}" y="{y1 + 16}" text-anchor="middle">{n}</text>')
        svg.append(f'<text x="{x0 + panel_w / 2}" y="{y1 + 34}" text-anchor="middle">concurrency</text>')
        for client, label, colour in CLIENTS:
            points = [(x, y1 - (y1 - y0) * r[key] / top) for x, r in zip(xs, series[client]) if r]
            if points:
                svg.append('<polyline fill="none" stroke-width="2" stroke="%s" points="%s"/>'
                           % (colour, " ".join(f"{x:.1f},{y:.1f}" for x, y in points)))
                for x, y in points:
                    svg.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')

    panel(0, "tokens_per_s", "tokens per second")
    panel(1, "cpu_us_per_token", "client CPU per token (us)")
    for i, (_, label, colour) in enumerate(CLIENTS):
        svg_util.legend_entry(svg, margin + i * 200, height - 6, colour, label)
    svg_util.write(svg, path)


if __name__ == "__main__":
    rows = load(sys.argv[1])
    with open(sys.argv[2], "w") as f:
        json.dump(rows, f, indent=1)
    chart(rows, sys.argv[3])
    text = table(rows) + "\n\n" + targets(rows) + "\n"
    print(text)
    if len(sys.argv) > 4:  # the same as Markdown, for the README
        with open(sys.argv[4], "w") as f:
            f.write(text)

#!/usr/bin/env python3
"""Reads the JSON lines of one bench/distance run (each a cartesia-bench or curl-bench
object with "scenario" and "rtt_ms" added); writes the table with the goals as Markdown
and a chart (SVG, by hand: no plotting library), and prints the table.

usage: distance_report.py RESULTS.jsonl OUT.md OUT.svg"""
import json
import sys

import svg_util

# scenario: (label, goal) where goal is None (a reference row), "pooled" (p50 <= RTT + 1),
# "warm" (p50 and p99 <= RTT + 2) or "oneshot" (p50 <= libcurl-new-1's p50).
SCENARIOS = [
    ("pooled-1", "pooled, concurrency 1", "pooled"),
    ("pooled-16", "pooled, concurrency 16", "pooled"),
    ("libcurl-1", "libcurl keep-alive, concurrency 1", None),
    ("libcurl-16", "libcurl keep-alive, concurrency 16", None),
    ("first-token-min0", "first token, min_connections 0", None),
    ("first-token-min1", "first token, min_connections 1", "warm"),
    ("after-idle-min0", "after 3 s idle (nginx closed at 2 s), min 0", None),
    ("after-idle-min1", "after 3 s idle (nginx closed at 2 s), min 1", "warm"),
    ("after-idle-hint-min0", "after 3 s idle, Keep-Alive: timeout=2, min 0", None),
    ("after-idle-hint-min1", "after 3 s idle, Keep-Alive: timeout=2, min 1", "warm"),
    ("oneshot-1", "one-shot, concurrency 1", "oneshot"),
    ("libcurl-new-1", "libcurl, new connection per token, c=1", None),
    ("libcurl-new-full-1", "libcurl, the same without TLS resumption", None),
]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def find(rows, scenario, rtt):
    return next((r for r in rows if r["scenario"] == scenario and r["rtt_ms"] == rtt), None)


def goal(rows, kind, rtt):
    """(text, limit on p50, limit on p99 or None); None when the row has no goal."""
    if kind == "pooled":
        return f"p50 <= {rtt + 1}", rtt + 1, None
    if kind == "warm":
        return f"p50, p99 <= {rtt + 2}", rtt + 2, rtt + 2
    if kind == "oneshot":
        curl = find(rows, "libcurl-new-1", rtt)
        if curl:
            limit = curl["latency_ms"]["p50"]
            return f"p50 <= libcurl's {limit:.2f}", limit, None
    return None


def verdict(row, limits):
    if row is None or limits is None:
        return ""
    _, p50_limit, p99_limit = limits
    lat = row["latency_ms"]
    if row["errors"]:
        return f"NO ({row['errors']} errors)"
    if lat["p50"] > p50_limit:
        return "NO"
    if p99_limit is not None and lat["p99"] > p99_limit:
        return "p50 only"
    return "yes"


def table(rows, rtts):
    head = "| scenario | " + " | ".join(f"RTT {r}: p50 ms | p99 ms | goal | met" for r in rtts) + " |"
    lines = [head, "|---|" + "---:|---:|---|---|" * len(rtts)]
    for scenario, label, kind in SCENARIOS:
        cells = []
        for rtt in rtts:
            row = find(rows, scenario, rtt)
            limits = goal(rows, kind, rtt)
            lat = row["latency_ms"] if row else {}
            cells += [f"{lat['p50']:.2f}" if row else "-", f"{lat['p99']:.2f}" if row else "-",
                      limits[0] if limits else "", verdict(row, limits)]
        if any(find(rows, scenario, rtt) for rtt in rtts):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(rows, rtts):
    out = []
    for rtt in rtts:
        for scenario in ("first-token-min1", "after-idle-min1", "after-idle-hint-min1", "first-token-min0"):
            row = find(rows, scenario, rtt)
            if row:
                out.append(f"- RTT {rtt}, {scenario}: {row['tokens']} timed tokens, {row['errors']} errors, "
                           f"{row['connections_opened']} connections opened by the client(s) in all")
    return "\n".join(out)


def chart(rows, rtts, path):
    """One panel per RTT: a bar per scenario to its p50, a whisker to its p99, a red tick
    at its goal, and dashed lines at 1 and 3 RTT."""
    present = [s for s in SCENARIOS if any(find(rows, s[0], r) for r in rtts)]
    label_w, panel_w, bar_h, top_pad = 300, 300, 16, 50
    height = top_pad + len(present) * (bar_h + 8) + 50
    width = label_w + len(rtts) * (panel_w + 40)
    svg = svg_util.start(width, height)
    for i, (_, label, _) in enumerate(present):
        y = top_pad + i * (bar_h + 8) + bar_h - 4
        svg.append(f'<text x="{label_w - 8}" y="{y}" text-anchor="end">{label}</text>')
    for p, rtt in enumerate(rtts):
        x0 = label_w + p * (panel_w + 40)
        values = [find(rows, s, rtt)["latency_ms"]["p99"] for s, _, _ in present if find(rows, s, rtt)]
        scale_max = max(values + [3 * rtt]) * 1.1
        sx = lambda v: x0 + panel_w * v / scale_max
        bottom = top_pad + len(present) * (bar_h + 8)
        svg.append(f'<text x="{x0 + panel_w / 2}" y="20" text-anchor="middle" font-weight="bold">'
                   f'RTT {rtt} ms: latency (ms), bar p50, whisker p99</text>')
        for k, name in ((1, "1 RTT"), (3, "3 RTT")):
            x = sx(k * rtt)
            svg.append(f'<line x1="{x:.1f}" y1="{top_pad - 8}" x2="{x:.1f}" y2="{bottom}" stroke="#999" '
                       f'stroke-dasharray="4,3"/>')
            svg.append(f'<text x="{x:.1f}" y="{top_pad - 12}" text-anchor="middle" fill="#666">{name}</text>')
        svg.append(f'<line x1="{x0}" y1="{bottom}" x2="{x0 + panel_w}" y2="{bottom}" stroke="black"/>')
        for t in range(5):
            v = scale_max * t / 4
            svg.append(f'<text x="{sx(v):.1f}" y="{bottom + 16}" text-anchor="middle">{v:.0f}</text>')
        for i, (scenario, _, kind) in enumerate(present):
            row = find(rows, scenario, rtt)
            if not row:
                continue
            y = top_pad + i * (bar_h + 8)
            limits = goal(rows, kind, rtt)
            ok = verdict(row, limits)
            colour = "#7f7f7f" if not ok else ("#2ca02c" if ok == "yes" else "#d62728")
            lat = row["latency_ms"]
            svg.append(f'<rect x="{x0}" y="{y}" width="{sx(lat["p50"]) - x0:.1f}" height="{bar_h}" fill="{colour}"/>')
            svg.append(f'<line x1="{sx(lat["p50"]):.1f}" y1="{y + bar_h / 2}" x2="{sx(lat["p99"]):.1f}" '
                       f'y2="{y + bar_h / 2}" stroke="black"/>')
            svg.append(f'<line x1="{sx(lat["p99"]):.1f}" y1="{y + 3}" x2="{sx(lat["p99"]):.1f}" y2="{y + bar_h - 3}" '
                       f'stroke="black"/>')
            if limits:
                gx = sx(limits[1])
                svg.append(f'<line x1="{gx:.1f}" y1="{y - 2}" x2="{gx:.1f}" y2="{y + bar_h + 2}" stroke="red" '
                           f'stroke-width="2"/>')
    legend_y = height - 14
    for j, (colour, text) in enumerate((("#2ca02c", "goal met"), ("#d62728", "goal not met"),
                                        ("#7f7f7f", "reference (no goal)"))):
        svg_util.legend_entry(svg, label_w + j * 160, legend_y, colour, text)
    svg.append(f'<line x1="{label_w + 480}" y1="{legend_y - 10}" x2="{label_w + 480}" y2="{legend_y + 2}" '
               f'stroke="red" stroke-width="2"/>')
    svg.append(f'<text x="{label_w + 486}" y="{legend_y}">goal</text>')
    svg_util.write(svg, path)


if __name__ == "__main__":
    rows = load(sys.argv[1])
    rtts = sorted({r["rtt_ms"] for r in rows})
    text = table(rows, rtts) + "\n\n" + notes(rows, rtts) + "\n"
    print(text)
    with open(sys.argv[2], "w") as f:
        f.write(text)
    chart(rows, rtts, sys.argv[3])

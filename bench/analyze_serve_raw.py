"""Where the serve benchmark's p99 swing comes from, from one run's raw file.

Reads ``bench/results/serve-<ts>-raw.json`` (``BENCH_RAW=on npm run bench:serve``) and, optionally,
a JVM unified GC log of the Cassandra node (``-Xlog:gc`` or ``jcmd <pid> VM.log output=<file>
what=gc=info decorators=utctime``), and prints:

* how the handler/floor p99 ratio of disjoint blocks of consecutive rounds spreads as blocks grow
  (sampling noise shrinks about as 1/sqrt(size); drift between blocks does not);
* per run and mode, the slow requests (above that mode's p99): how many separate episodes they form
  and which share overlapped a GC pause of the node or of the client.

Usage: .local/venv/bin/python bench/analyze_serve_raw.py RAW_JSON [NODE_GC_LOG]
"""

from __future__ import annotations

import json
import math
import re
import sys
from datetime import datetime

import numpy as np

GC_LINE = re.compile(r"^\[(?P<utc>[^\]]+)\].*Pause.* (?P<ms>[0-9.]+)ms$")


def p99(values: np.ndarray) -> float:
    """Nearest rank, as bench/p99-ratio.ts and HdrHistogram define it."""
    ordered = np.sort(values)
    return float(ordered[max(1, math.ceil(0.99 * len(ordered))) - 1])


def epoch_ms(utc: str) -> float:
    return datetime.fromisoformat(utc.replace("Z", "+00:00").replace("+0000", "+00:00")).timestamp() * 1000


def node_pauses(path: str) -> np.ndarray:
    """[start, end] epoch ms of each pause (the log stamps a pause when it ends)."""
    pauses = []
    with open(path, encoding="utf-8") as log:
        for line in log:
            match = GC_LINE.match(line.strip())
            if match:
                end = epoch_ms(match["utc"])
                pauses.append((end - float(match["ms"]), end))
    return np.array(pauses).reshape(-1, 2)


def overlapping(begin: np.ndarray, end: np.ndarray, pauses: np.ndarray, slack_ms: float) -> np.ndarray:
    """Which [begin, end] intervals overlap a pause (widened by slack_ms for clock stamping)."""
    if len(pauses) == 0:
        return np.zeros(len(begin), dtype=bool)
    order = np.argsort(pauses[:, 0])
    starts = pauses[order, 0] - slack_ms
    ends = np.maximum.accumulate(pauses[order, 1] + slack_ms)
    # The last pause starting before the interval ends must end after the interval begins.
    index = np.searchsorted(starts, end, side="left") - 1
    return (index >= 0) & (ends[np.clip(index, 0, None)] > begin)


def episodes(begin: np.ndarray, end: np.ndarray, gap_ms: float = 1.0) -> int:
    order = np.argsort(begin)
    count, reach = 0, -math.inf
    for b, e in zip(begin[order], end[order], strict=True):
        if b > reach + gap_ms:
            count += 1
        reach = max(reach, e)
    return count


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        raw = json.load(file)
    gc_node = node_pauses(sys.argv[2]) if len(sys.argv) > 2 else np.zeros((0, 2))
    runs = raw["runs"]

    # 1. Block size against spread: blocks of k consecutive rounds, every run's rounds in sequence.
    rounds = []
    for run in runs:
        by_round: dict[int, dict[str, list[float]]] = {}
        for segment in run:
            by_round.setdefault(segment["round"], {"floor": [], "handler": []})[segment["mode"]].extend(
                segment["latencyMs"]
            )
        rounds.extend(by_round[r] for r in sorted(by_round))
    per_round = len(rounds[0]["floor"])
    print(f"{len(rounds)} rounds of {per_round} requests per mode")
    print("rounds/block  requests/mode  blocks  ratio median  spread (MAD %)  largest deviation %")
    for k in (1, 2, 3, 5, 10, 15):
        blocks = len(rounds) // k
        if blocks < 2:
            continue
        ratios = []
        for b in range(blocks):
            chunk = rounds[b * k : (b + 1) * k]
            handler = np.concatenate([np.array(r["handler"]) for r in chunk])
            floor = np.concatenate([np.array(r["floor"]) for r in chunk])
            ratios.append(p99(handler) / p99(floor))
        ratios = np.array(ratios)
        median = float(np.median(ratios))
        mad = float(np.median(np.abs(ratios - median))) / median * 100
        worst = float(np.max(np.abs(ratios - median))) / median * 100
        print(f"{k:>12}  {k * per_round:>13}  {blocks:>6}  {median:>12.3f}  {mad:>14.1f}  {worst:>19.1f}")

    # 2. Where each run's slow requests come from.
    client_gc = np.array(raw["clientGcPauses"]).reshape(-1, 2)
    print("\nrun mode     p99 ms  slow  episodes  slow/episode  during node GC % (all)  during client GC % (all)")
    for index, run in enumerate(runs, start=1):
        for mode in ("floor", "handler"):
            segments = [s for s in run if s["mode"] == mode]
            latency = np.concatenate([np.array(s["latencyMs"]) for s in segments])
            at = np.concatenate([np.array(s["at"]) for s in segments])
            # The same request on the epoch clock: the segment's UTC start plus its offset.
            epoch = np.concatenate(
                [epoch_ms(s["startedAtUtc"]) + np.array(s["at"]) - s["startedAtMs"] for s in segments]
            )
            threshold = p99(latency)
            slow = latency > threshold
            node = overlapping(epoch[slow], epoch[slow] + latency[slow], gc_node, 1.0)
            client = overlapping(at[slow], at[slow] + latency[slow], client_gc, 0.0)
            # The same share for every request: what chance alone gives.
            node_all = overlapping(epoch, epoch + latency, gc_node, 1.0).mean() * 100
            client_all = overlapping(at, at + latency, client_gc, 0.0).mean() * 100
            count = int(slow.sum())
            n_episodes = episodes(at[slow], at[slow] + latency[slow])
            print(
                f"{index:>3} {mode:<8} {threshold:>6.2f}  {count:>4}  {n_episodes:>8}  "
                f"{count / max(1, n_episodes):>12.1f}  {node.mean() * 100:>10.1f} ({node_all:4.1f})  "
                f"{client.mean() * 100:>12.1f} ({client_all:4.1f})"
            )
    if len(gc_node):
        print(f"\nnode GC pauses in the log: {len(gc_node)}, median {np.median(gc_node[:, 1] - gc_node[:, 0]):.2f} ms")


if __name__ == "__main__":
    main()

"""Chart for bench/serve-bench.ts: latency distribution (percentile curve) of each mode and the
latency over time of each run. Usage: python bench/plot_serve_bench.py bench/results/serve-<ts>.json
Writes the .png next to the JSON."""

import itertools
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt


def with_gaps(rows: list[list[float]]) -> list[list[float]]:
    """Breaks the line where a mode paused (its rounds alternate with another mode's)."""
    if len(rows) < 3:
        return rows
    steps = sorted(b[0] - a[0] for a, b in itertools.pairwise(rows))
    typical = steps[len(steps) // 2]
    out = [rows[0]]
    for previous, row in itertools.pairwise(rows):
        if row[0] - previous[0] > 3 * typical:
            out.append([row[0], float("nan"), float("nan"), float("nan"), 0])
        out.append(row)
    return out


def main(path: Path) -> None:
    result = json.loads(path.read_text())
    runs = {
        "floor (bare driver, prepared)": result["modes"]["floor"],
        "handler (getFeatures in-process)": result["modes"]["handler"],
        "history (seed: SELECT * ~630 rows)": result["modes"]["history"],
    }
    rate = result["fixedRate"]["targetPerSecond"]
    runs[f"handler @ {rate}/s (open loop)"] = result["fixedRate"]
    if "fixedRateFloor" in result:
        runs[f"floor @ {rate}/s (open loop)"] = result["fixedRateFloor"]
    concurrency = result["settings"]["BENCH_CONCURRENCY"]
    fig, (dist, over_time) = plt.subplots(1, 2, figsize=(15, 6))

    for name, run in runs.items():
        # x = 1 / (1 - p): equal room for p50, p90, p99, p99.9...
        points = [(p, ms) for p, ms in run["percentileCurve"] if p < 100]
        dist.plot(
            [1 / (1 - p / 100) for p, _ in points],
            [ms for _, ms in points],
            marker="o",
            label=name,
        )
    ticks = [50, 90, 99, 99.9, 99.99]
    dist.set_xscale("log")
    dist.set_yscale("log")
    dist.set_xticks([1 / (1 - p / 100) for p in ticks], [f"p{p:g}" for p in ticks])
    dist.axhline(5.5, color="grey", linestyle="--", linewidth=1, label="5.5 ms (p99.9 target)")
    dist.set_xlabel("percentile")
    dist.set_ylabel("latency (ms)")
    dist.set_title(f"Latency distribution (concurrency {concurrency}; open loop at fixed rate)")
    dist.grid(True, which="both", alpha=0.3)
    dist.legend(fontsize=8)

    for name, run in runs.items():
        rows = with_gaps(run["timeline"])
        line = over_time.plot([r[0] for r in rows], [r[2] for r in rows], label=f"{name} p99")[0]
        over_time.plot(
            [r[0] for r in rows],
            [r[1] for r in rows],
            color=line.get_color(),
            alpha=0.5,
            linestyle=":",
        )
    over_time.set_yscale("log")
    over_time.set_xlabel("seconds since the run started (dotted: p50)")
    over_time.set_ylabel("latency (ms)")
    over_time.set_title("Latency over time (p99 and p50 per window)")
    over_time.grid(True, which="both", alpha=0.3)
    over_time.legend(fontsize=8)

    fig.tight_layout()
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=110)
    print(f"[serve-bench] wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Deterministic synthetic raw files in the shape of the seed workload (London smart meters, daily):
5,560 households from 2011-11-23 to 2014-02-28, about 3.5 million rows, with households joining late
and leaving early, missing days, and optional deliberately malformed files for the job's tests.

    python -m tools.synthetic --out raw.csv                         # seed scale
    python -m tools.synthetic --out raw.csv --households 20 --start 2012-01-01 --end 2012-06-30
    python -m tools.synthetic --out raw.csv --split-at 2014-02-28 --split-out last-day.csv
    python -m tools.synthetic --out bad.csv --households 5 --malformed bad_numbers
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
import pandas as pd

HEADER = [
    "household_id",
    "day",
    "energy_median",
    "energy_mean",
    "energy_max",
    "energy_count",
    "energy_std",
    "energy_sum",
    "energy_min",
]
SEED_START = dt.date(2011, 11, 23)
SEED_END = dt.date(2014, 2, 28)
SEED_HOUSEHOLDS = 5_560
MALFORMED_KINDS = (
    "bad_header",
    "bad_numbers",
    "bad_dates",
    "bad_ids",
    "null_keys",
    "duplicates",
    "empty",
    "header_only",
)


def household_id(index: int) -> str:
    return f"MAC{index + 2:06d}"


def generate_frame(
    households: int = SEED_HOUSEHOLDS,
    start: dt.date = SEED_START,
    end: dt.date = SEED_END,
    seed: int = 7,
    missing_share: float = 0.01,
    null_share: float = 0.0,
) -> pd.DataFrame:
    """Typed rows (NaN = empty field). Each household gets its own generator seeded from (seed, index),
    so a household's rows do not depend on how many other households are generated."""
    days = (end - start).days + 1
    all_days = np.arange(np.datetime64(start), np.datetime64(end) + 1)
    doy = np.array([(d.astype(dt.date).timetuple().tm_yday) for d in all_days])
    season = 1.0 + 0.3 * np.cos(2 * np.pi * (doy - 15) / 365.25)
    frames = []
    for h in range(households):
        rng = np.random.default_rng([seed, h])
        # A quarter of households are there from the first day; the rest join over the first half,
        # and one in ten leaves early: about 631 days per household on average, as in the seed data.
        first = 0 if rng.random() < 0.25 else int(rng.integers(0, max(1, days // 2)))
        last = days - 1 if rng.random() < 0.9 else int(rng.integers(min(first + 30, days - 1), days))
        present = np.zeros(days, dtype=bool)
        present[first : last + 1] = True
        present &= rng.random(days) >= missing_share
        idx = np.nonzero(present)[0]
        if idx.size == 0:
            continue
        n = idx.size
        base = rng.lognormal(np.log(10.0), 0.5)
        count = np.full(n, 48, dtype=np.int64)
        partial = rng.random(n) < 0.02
        count[partial] = rng.integers(1, 48, partial.sum())
        total = np.round(base * season[idx] * rng.lognormal(0.0, 0.25, n) * count / 48.0, 3)
        mean = total / count
        std = np.where(count > 1, mean * rng.uniform(0.4, 1.0, n), np.nan)
        frame = pd.DataFrame(
            {
                "household_id": household_id(h),
                "day": all_days[idx],
                "energy_median": np.round(mean * rng.uniform(0.6, 0.95, n), 7),
                "energy_mean": mean,
                "energy_max": np.round(mean * rng.uniform(2.0, 4.0, n), 3),
                "energy_count": count,
                "energy_std": std,
                "energy_sum": total,
                "energy_min": np.round(mean * rng.uniform(0.05, 0.4, n), 3),
            }
        )
        if null_share > 0:
            frame.loc[rng.random(n) < null_share, "energy_sum"] = np.nan
        frames.append(frame)
    if not frames:
        return pd.DataFrame({c: [] for c in HEADER})
    out = pd.concat(frames, ignore_index=True)
    out["day"] = pd.to_datetime(out["day"]).dt.strftime("%Y-%m-%d")
    return out


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every field as the text written to the file; NaN becomes an empty field."""
    text = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind == "f":
            text[column] = values.map(repr).where(values.notna(), "")
        else:
            text[column] = values.astype(str)
    return text


def corrupt(frame: pd.DataFrame, kind: str, share: float = 0.01, seed: int = 7) -> pd.DataFrame:
    """A text copy of the frame with a share of rows broken in the given way (see MALFORMED_KINDS)."""
    rng = np.random.default_rng([seed, 99])
    text = _as_text(frame)
    picks = np.nonzero(rng.random(len(text)) < share)[0]
    if picks.size == 0 and len(text):
        picks = np.array([0])
    if kind == "bad_numbers":
        text.loc[text.index[picks], "energy_sum"] = "12,5kWh".replace(",", ".")
    elif kind == "bad_dates":
        text.loc[text.index[picks], "day"] = ["2013-02-30" if i % 2 else "2013/01/01" for i in range(picks.size)]
    elif kind == "bad_ids":
        text.loc[text.index[picks], "household_id"] = "MAC 000002; DROP"
    elif kind == "null_keys":
        column = np.where(np.arange(picks.size) % 2 == 0, "household_id", "day")
        for row, col in zip(text.index[picks], column, strict=True):
            text.loc[row, col] = ""
    elif kind == "duplicates":
        text = pd.concat([text, text.iloc[picks]], ignore_index=True)
    elif kind not in ("bad_header", "empty", "header_only"):
        raise ValueError(f"unknown malformed kind {kind}; expected one of {', '.join(MALFORMED_KINDS)}")
    return text


def write_csv(frame: pd.DataFrame, path: str, malformed: str | None = None, share: float = 0.01, seed: int = 7) -> int:
    """Writes the raw file; returns the number of data rows written."""
    if malformed == "empty":
        open(path, "w").close()
        return 0
    text = corrupt(frame, malformed, share, seed) if malformed else _as_text(frame)
    header = list(HEADER)
    if malformed == "bad_header":
        header[header.index("energy_sum")] = "energy_total"
        header.append("tariff")
        text["tariff"] = "Std"
    if malformed == "header_only":
        text = text.iloc[0:0]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(header) + "\n")
        text.to_csv(handle, header=False, index=False, lineterminator="\n")
    return len(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--households", type=int, default=SEED_HOUSEHOLDS)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=SEED_START)
    parser.add_argument("--end", type=dt.date.fromisoformat, default=SEED_END)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--missing-share", type=float, default=0.01)
    parser.add_argument("--null-share", type=float, default=0.0, help="share of empty energy_sum fields")
    parser.add_argument("--malformed", choices=MALFORMED_KINDS)
    parser.add_argument("--malformed-share", type=float, default=0.01)
    parser.add_argument("--split-at", type=dt.date.fromisoformat, help="rows on/after this day go to --split-out")
    parser.add_argument("--split-out", help="second file for the rows on/after --split-at")
    args = parser.parse_args(argv)
    started = time.monotonic()
    frame = generate_frame(args.households, args.start, args.end, args.seed, args.missing_share, args.null_share)
    later = None
    if args.split_at:
        if not args.split_out:
            parser.error("--split-at needs --split-out")
        cut = args.split_at.isoformat()
        later, frame = frame[frame["day"] >= cut], frame[frame["day"] < cut]
    rows = write_csv(frame, args.out, args.malformed, args.malformed_share, args.seed)
    message = f"wrote {rows} rows to {args.out}"
    if later is not None:
        message += f" and {write_csv(later, args.split_out)} rows to {args.split_out}"
    print(f"{message} in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

// The serve benchmark's ratio estimator (bench/p99-ratio.ts): the ABBA order is balanced, the
// merged quantile equals the quantile of the concatenated samples, the bootstrap interval covers
// the ratio and narrows with more rounds, and a clump of slow requests counts as one episode.
import { describe, expect, it } from "vitest";
import {
  abbaOrder,
  bootstrapRatio,
  mulberry32,
  quantileOfUnion,
  type RoundSamples,
  ratioOfRounds,
  sortedSample,
  tailEpisodes,
} from "../../bench/p99-ratio.js";

/** Nearest rank over one array: the reference the merged quantile must equal. */
function nearestRank(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
}

/** Latencies with a heavy tail, like the benchmark's: mostly ~1 ms, 2% between 3 and 20 ms. */
function latencies(random: () => number, count: number, scale = 1): number[] {
  return Array.from({ length: count }, () =>
    random() < 0.02 ? (3 + random() * 17) * scale : (0.5 + random()) * scale,
  );
}

describe("abbaOrder", () => {
  it("puts each mode in every position once over two rounds, and alternates which starts", () => {
    const two = [abbaOrder(0), abbaOrder(1)];
    for (let position = 0; position < 4; position++) {
      expect(new Set(two.map((round) => round[position]))).toEqual(new Set(["floor", "handler"]));
    }
    expect(abbaOrder(0)).toEqual(["floor", "handler", "handler", "floor"]);
    expect(abbaOrder(1)).toEqual(["handler", "floor", "floor", "handler"]);
    expect(abbaOrder(2)).toEqual(abbaOrder(0));
  });
});

describe("quantileOfUnion", () => {
  it("equals the nearest-rank quantile of the concatenated samples, ties and duplicates included", () => {
    const random = mulberry32(7);
    const parts = [5, 1, 300, 2_000, 17].map((n) => latencies(random, n).map((v) => Math.round(v * 10) / 10));
    const all = parts.flat();
    for (const q of [0, 0.001, 0.5, 0.9, 0.99, 0.999, 1]) {
      expect(quantileOfUnion(parts.map(sortedSample), q)).toBe(nearestRank(all, q));
    }
  });

  it("counts a sample as many times as its weight (a bootstrap draw), and skips weight 0", () => {
    const random = mulberry32(11);
    const [first, second, third] = [latencies(random, 400), latencies(random, 250), latencies(random, 900)];
    const parts = [first, second, third];
    const weights = [2, 0, 3];
    const repeated = [...first, ...first, ...third, ...third, ...third];
    for (const q of [0.5, 0.99]) {
      expect(quantileOfUnion(parts.map(sortedSample), q, weights)).toBe(nearestRank(repeated, q));
    }
  });

  it("is NaN when there is nothing to take a quantile of", () => {
    expect(quantileOfUnion([], 0.99)).toBeNaN();
    expect(quantileOfUnion([sortedSample([1, 2])], 0.99, [0])).toBeNaN();
  });
});

describe("ratioOfRounds and bootstrapRatio", () => {
  const rounds = (count: number, perRound: number, handlerScale: number, seed: number): RoundSamples[] => {
    const random = mulberry32(seed);
    return Array.from({ length: count }, () => ({
      floor: sortedSample(latencies(random, perRound)),
      handler: sortedSample(latencies(random, perRound, handlerScale)),
    }));
  };

  it("finds a handler whose every latency is 1.5x the floor's at 1.5x, with an interval around it", () => {
    const data = rounds(10, 5_000, 1.5, 3);
    const ratio = ratioOfRounds(data);
    expect(ratio).toBeGreaterThan(1.35);
    expect(ratio).toBeLessThan(1.65);
    const ci = bootstrapRatio(data, { resamples: 500, seed: 1 });
    expect(ci.low).toBeLessThan(ratio);
    expect(ci.high).toBeGreaterThan(ratio);
    expect(ci.low).toBeGreaterThan(1.2);
    expect(ci.high).toBeLessThan(1.8);
  });

  it("gives a narrower interval from more rounds of the same distributions", () => {
    const width = (ci: { low: number; high: number }) => ci.high - ci.low;
    const few = bootstrapRatio(rounds(4, 1_000, 1, 5), { resamples: 500 });
    const many = bootstrapRatio(rounds(40, 1_000, 1, 5), { resamples: 500 });
    expect(width(many)).toBeLessThan(width(few) / 2);
  });

  it("is reproducible for a given seed", () => {
    const data = rounds(6, 1_000, 1.2, 9);
    expect(bootstrapRatio(data, { resamples: 300, seed: 4 })).toEqual(
      bootstrapRatio(data, { resamples: 300, seed: 4 }),
    );
  });
});

describe("tailEpisodes", () => {
  it("counts overlapping or adjacent slow requests as one episode, and ignores fast ones", () => {
    // 16 requests stalled by one 20 ms pause, then one lone slow request, fast ones between.
    const begins = [...Array.from({ length: 16 }, (_, i) => 100 + i * 0.1), 150, 200, 300];
    const latencies = [...Array.from({ length: 16 }, () => 20), 1, 12, 0.8];
    expect(tailEpisodes(begins, latencies, 5)).toEqual({ requests: 17, episodes: 2 });
    expect(tailEpisodes(begins, latencies, 50)).toEqual({ requests: 0, episodes: 0 });
  });

  it("splits slow requests further apart than the gap", () => {
    expect(tailEpisodes([0, 10.5, 30], [10, 10, 10], 5, 1)).toEqual({ requests: 3, episodes: 2 });
    expect(tailEpisodes([0, 12, 30], [10, 10, 10], 5, 1)).toEqual({ requests: 3, episodes: 3 });
  });
});

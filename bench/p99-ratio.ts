// The statistics of the serve benchmark's handler/floor p99 ratio, kept apart from the I/O so they
// can be tested: the balanced (ABBA) order of the modes, exact quantiles of merged samples, a paired
// bootstrap over rounds for the ratio's confidence interval, and how many separate stalls make a tail.

export type Mode = "floor" | "handler";

/**
 * The order of one round's four segments: floor, handler, handler, floor in even rounds (0-based)
 * and handler, floor, floor, handler in odd ones. Over two rounds each mode runs once in every
 * position, so a drift within a round or a cost of switching modes falls on both modes alike.
 */
export function abbaOrder(round: number): Mode[] {
  return round % 2 === 0
    ? ["floor", "handler", "handler", "floor"]
    : ["handler", "floor", "floor", "handler"];
}

/** A deterministic pseudo-random generator (mulberry32): the same seed gives the same sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function sortedSample(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** How many values of a sorted sample are <= v. */
function countAtMost(sorted: Float64Array, v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The q-quantile of the union of sorted samples, sample i counted weights[i] times (default once):
 * the nearest-rank definition, i.e. the smallest value with at least ceil(q * n) values at or below
 * it (HdrHistogram's getValueAtPercentile, without its bucket rounding). The union is never built:
 * the value is found by bisection over counts, so a bootstrap can afford thousands of resamples.
 */
export function quantileOfUnion(
  samples: readonly Float64Array[],
  q: number,
  weights?: readonly number[],
): number {
  const weight = (i: number) => (weights === undefined ? 1 : (weights[i] as number));
  let total = 0;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  samples.forEach((s, i) => {
    if (weight(i) === 0 || s.length === 0) return;
    total += weight(i) * s.length;
    lo = Math.min(lo, s[0] as number);
    hi = Math.max(hi, s[s.length - 1] as number);
  });
  if (total === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * total));
  const countAtMostAll = (v: number) => {
    let count = 0;
    samples.forEach((s, i) => {
      if (weight(i) > 0) count += weight(i) * countAtMost(s, v);
    });
    return count;
  };
  if (countAtMostAll(lo) >= rank) return lo;
  // Invariant: fewer than `rank` values are <= lo, at least `rank` are <= hi.
  for (let step = 0; step < 64 && hi - lo > 1e-9 * Math.max(1, Math.abs(hi)); step++) {
    const mid = lo + (hi - lo) / 2;
    if (countAtMostAll(mid) >= rank) hi = mid;
    else lo = mid;
  }
  // Walk up through the (at most a few) sample values left in (lo, hi].
  for (;;) {
    let next = Number.POSITIVE_INFINITY;
    samples.forEach((s, i) => {
      if (weight(i) === 0) return;
      const at = countAtMost(s, lo);
      if (at < s.length) next = Math.min(next, s[at] as number);
    });
    if (countAtMostAll(next) >= rank) return next;
    lo = next;
  }
}

/** One round's latencies (ms) of each mode, sorted. */
export interface RoundSamples {
  floor: Float64Array;
  handler: Float64Array;
}

/** handler p99 / floor p99 over the union of the given rounds (each counted weights[i] times). */
export function ratioOfRounds(
  rounds: readonly RoundSamples[],
  q = 0.99,
  weights?: readonly number[],
): number {
  const handler = quantileOfUnion(
    rounds.map((r) => r.handler),
    q,
    weights,
  );
  const floor = quantileOfUnion(
    rounds.map((r) => r.floor),
    q,
    weights,
  );
  return handler / floor;
}

/**
 * A 95% interval of the ratio by a paired bootstrap over rounds: the rounds are drawn with
 * replacement (a round's floor and handler segments together, since they ran minutes apart at most
 * and share the machine's state), and the ratio recomputed over the merged draw; the interval is the
 * 2.5th to 97.5th percentile of the resampled ratios. Rounds, not requests, are the unit because
 * requests are not independent: one stall of the node or of this process delays every request in
 * flight at once, so the tail comes in clumps, and an i.i.d. bootstrap over requests would pretend
 * a clump of 16 slow requests were 16 separate pieces of evidence.
 */
export function bootstrapRatio(
  rounds: readonly RoundSamples[],
  options: { q?: number; resamples?: number; seed?: number } = {},
): { low: number; high: number; resamples: number } {
  const { q = 0.99, resamples = 2000, seed = 1 } = options;
  const random = mulberry32(seed);
  const ratios = new Float64Array(resamples);
  const weights = new Array<number>(rounds.length);
  for (let b = 0; b < resamples; b++) {
    weights.fill(0);
    for (let i = 0; i < rounds.length; i++) {
      const pick = Math.floor(random() * rounds.length);
      weights[pick] = (weights[pick] as number) + 1;
    }
    ratios[b] = ratioOfRounds(rounds, q, weights);
  }
  ratios.sort();
  const at = (p: number) => ratios[Math.min(resamples - 1, Math.max(0, Math.floor(p * resamples)))] as number;
  return { low: at(0.025), high: at(0.975), resamples };
}

/**
 * How many separate episodes the requests slower than `thresholdMs` form: requests whose
 * [begin, begin + latency] intervals overlap, or lie within `gapMs` of each other, are one episode
 * (one stall seen by every request in flight). The number of episodes, not of slow requests, is
 * the tail's effective sample size.
 */
export function tailEpisodes(
  beginsMs: ArrayLike<number>,
  latenciesMs: ArrayLike<number>,
  thresholdMs: number,
  gapMs = 1,
): { requests: number; episodes: number } {
  const slow: Array<[number, number]> = [];
  for (let i = 0; i < latenciesMs.length; i++) {
    const latency = latenciesMs[i] as number;
    if (latency > thresholdMs) slow.push([beginsMs[i] as number, (beginsMs[i] as number) + latency]);
  }
  slow.sort((a, b) => a[0] - b[0]);
  let episodes = 0;
  let end = Number.NEGATIVE_INFINITY;
  for (const [begin, finish] of slow) {
    if (begin > end + gapMs) episodes += 1;
    end = Math.max(end, finish);
  }
  return { requests: slow.length, episodes };
}

/** Median, and the largest distance from it in % (the spread the ±20% target bounds). */
export function spread(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  const worst = Math.max(...sorted.map((v) => Math.abs(v - median)));
  return {
    values,
    median: Math.round(median * 100) / 100,
    maxDeviationPercent: median === 0 ? 0 : Math.round((worst / median) * 1000) / 10,
    minMaxPercent: sorted[0] ? Math.round(((sorted.at(-1) as number) / sorted[0] - 1) * 1000) / 10 : 0,
  };
}

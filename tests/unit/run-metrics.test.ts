// Protects the metric contract the stack's alarms rely on: run metrics land in the namespace
// FeatureStore with the single dimension `view` (no `service` dimension Powertools adds by default),
// whichever function emits them.
import { Metrics } from "@aws-lambda-powertools/metrics";
import { afterEach, describe, expect, it, vi } from "vitest";
import { powertoolsRunMetrics, RUN_METRICS_NAMESPACE } from "../../functions/commons/run-adapters.js";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("run metrics", () => {
  it("are EMF lines in FeatureStore with the dimension view only, one per call", () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const metrics = powertoolsRunMetrics(
      new Metrics({ namespace: RUN_METRICS_NAMESPACE, serviceName: "ingest" }),
    );
    metrics.count("FilesQuarantined", "energy");
    metrics.hours("FeatureDataAgeHours", "weather", 26.123);
    const emitted = lines.filter((l) => l.includes("CloudWatchMetrics")).map((l) => JSON.parse(l));
    expect(emitted).toHaveLength(2);
    expect(emitted[0]).toMatchObject({
      _aws: {
        CloudWatchMetrics: [
          {
            Namespace: "FeatureStore",
            Dimensions: [["view"]],
            Metrics: [{ Name: "FilesQuarantined", Unit: "Count" }],
          },
        ],
      },
      view: "energy",
      FilesQuarantined: 1,
    });
    expect(emitted[1]).toMatchObject({ view: "weather", FeatureDataAgeHours: 26.12 });
    expect(emitted.every((e) => !("service" in e))).toBe(true);
  });
});

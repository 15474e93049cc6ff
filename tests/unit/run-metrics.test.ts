// Protects the metric contract the stack's alarms rely on (resources/monitoring.cjs): run metrics
// land in the namespace FeatureStore with exactly the dimensions service (the stage's
// POWERTOOLS_SERVICE_NAME, the same for every function) and view, one EMF line per metric.
import { Metrics } from "@aws-lambda-powertools/metrics";
import { afterEach, describe, expect, it, vi } from "vitest";
import { powertoolsRunMetrics, RUN_METRICS_NAMESPACE } from "#commons/run-adapters.js";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("run metrics", () => {
  it("are EMF lines in FeatureStore with the dimensions service and view, one per call", () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const metrics = powertoolsRunMetrics(
      new Metrics({ namespace: RUN_METRICS_NAMESPACE, serviceName: "feature-store-dev" }),
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
            Dimensions: [["service", "view"]],
            Metrics: [{ Name: "FilesQuarantined", Unit: "Count" }],
          },
        ],
      },
      service: "feature-store-dev",
      view: "energy",
      FilesQuarantined: 1,
    });
    expect(emitted[1]).toMatchObject({ view: "weather", FeatureDataAgeHours: 26.12 });
    expect(emitted[1]?._aws.CloudWatchMetrics[0].Dimensions).toEqual([["service", "view"]]);
  });
});

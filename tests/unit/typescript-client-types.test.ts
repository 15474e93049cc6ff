// The TypeScript client's types against the generated view types (clients/typescript/src/
// views.generated.ts): checked by `tsc --noEmit` (npx tsc; the repo's tsconfig includes the
// client), so a type that drifts fails the type check; the runtime assertions check the client
// builds nothing wrong either. No request is sent.
import { describe, expect, expectTypeOf, it } from "vitest";
import {
  type BatchItem,
  FeatureStoreClient,
  type FeatureVector,
  type GeneratedViews,
} from "#clients/typescript/src/index.js";

const client = new FeatureStoreClient({
  endpoint: "http://127.0.0.1:9",
  region: "eu-west-1",
  credentials: { accessKeyId: "a", secretAccessKey: "b" },
});

describe("TypeScript client types (compile-time)", () => {
  it("types a full vector from the generated view: energy_sum_3m is number | null", () => {
    type Full = Awaited<ReturnType<typeof client.getFeatures<"energy">>>;
    expectTypeOf<Full["features"]["energy_sum_3m"]>().toEqualTypeOf<number | null>();
    expectTypeOf<Full["view"]>().toEqualTypeOf<"energy">();
    expectTypeOf<Full>().toEqualTypeOf<FeatureVector<"energy", GeneratedViews["energy"]>>();
  });

  it("narrows a projection to the requested features, and refuses unknown names and views", () => {
    const projected = () =>
      client.getFeatures("energy", "MAC000002", { features: ["energy_sum_3m", "energy_count"] });
    type Projected = Awaited<ReturnType<typeof projected>>["features"];
    expectTypeOf<Projected>().toEqualTypeOf<{
      readonly energy_sum_3m: number | null;
      readonly energy_count: number | null;
    }>();
    // @ts-expect-error: not a feature of the energy view
    const typo = () => client.getFeatures("energy", "MAC000002", { features: ["energy_sum_4m"] });
    // @ts-expect-error: not a view of this store
    const gas = () => client.getFeatures("gas", "MAC000002");
    expect([typo, gas]).toHaveLength(2);
  });

  it("types batch items as found-with-features or not found", () => {
    const batch = () => client.getBatch("energy", ["a", "b"], { features: ["energy_mean"] });
    type Item = Awaited<ReturnType<typeof batch>>[number];
    expectTypeOf<Item>().toEqualTypeOf<BatchItem<{ readonly energy_mean: number | null }>>();
    const read = (item: Item) => (item.found ? item.features.energy_mean : undefined);
    expectTypeOf(read).returns.toEqualTypeOf<number | null | undefined>();
    client.close();
  });
});

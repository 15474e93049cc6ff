// Protects the generated contract: docs/openapi.json and the TypeScript client's view types are
// exactly what the feature views produce today (regenerated and compared), the document is valid
// OpenAPI 3.1 (openapi-spec-validator) whose schemas all compile under Ajv's strict JSON Schema
// 2020-12, and the handler's real responses for every route and status validate against it.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { StoreUnavailableError } from "#commons/errors.js";
import { FeatureReader } from "#functions/get-features/feature-reader.js";
import { createGetFeaturesHandler } from "#functions/get-features/http-handler.js";
import { buildOpenApiDocument } from "#functions/get-features/openapi.js";
import {
  CLIENT_TYPES_FILE,
  OPENAPI_FILE,
  projectViews,
  ROOT,
  renderClientTypes,
  renderOpenApi,
} from "#scripts/contract.js";
import { type FeatureCall, httpEvent, lambdaContext, viewsEvent } from "../fixtures/api-gateway-events.js";
import { FakeOnlineStore } from "../fixtures/fake-online-store.js";
import { energyRow, fixtureViews, weatherRow } from "../fixtures/feature-views.js";
import { createResponseValidator } from "../fixtures/openapi-validator.js";

const SPEC_VALIDATOR = join(ROOT, ".local/venv/bin/openapi-spec-validator");

/** Runs openapi-spec-validator (PyPI, installed with moto[server]) on a document. */
function specValidator(document: unknown): { ok: boolean; output: string } {
  const file = join(mkdtempSync(join(tmpdir(), "openapi-")), "openapi.json");
  writeFileSync(file, JSON.stringify(document));
  try {
    return { ok: true, output: execFileSync(SPEC_VALIDATOR, [file], { encoding: "utf8" }) };
  } catch (error) {
    return { ok: false, output: String((error as { stdout?: string }).stdout ?? error) };
  }
}

describe("generated contract files", () => {
  it("docs/openapi.json and the client's view types are what `npm run openapi` writes today", () => {
    const views = projectViews();
    expect(readFileSync(OPENAPI_FILE, "utf8")).toBe(renderOpenApi(views));
    expect(readFileSync(CLIENT_TYPES_FILE, "utf8")).toBe(renderClientTypes(views));
  });

  it("is valid OpenAPI 3.1, and the validator does fail a broken document", () => {
    expect(existsSync(SPEC_VALIDATOR), "run scripts/setup.sh (requirements.txt: moto[server])").toBe(true);
    const committed = JSON.parse(readFileSync(OPENAPI_FILE, "utf8"));
    expect(specValidator(committed)).toMatchObject({ ok: true });
    const fixtures = buildOpenApiDocument(fixtureViews(), { version: "0.0.0" });
    expect(specValidator(fixtures)).toMatchObject({ ok: true });
    const broken = { ...committed, paths: { "/views": { get: { responses: { "200": {} } } } } };
    expect(specValidator(broken).ok).toBe(false);
  }, 60_000);

  it("holds only schemas Ajv compiles in strict JSON Schema 2020-12 mode", () => {
    const document = buildOpenApiDocument(fixtureViews(), { version: "0.0.0" }) as {
      components: { schemas: Record<string, object> };
    };
    const ajv = new Ajv2020({ strict: true });
    addFormats(ajv);
    // The schemas as $defs of one schema (strict mode refuses OpenAPI's `components` keyword).
    const defs = JSON.parse(
      JSON.stringify(document.components.schemas).replaceAll("#/components/schemas/", "#/$defs/"),
    );
    ajv.addSchema({ $id: "c", $defs: defs });
    for (const name of Object.keys(defs)) {
      expect(() => ajv.compile({ $ref: `c#/$defs/${name}` }), name).not.toThrow();
    }
  });

  it("declares each feature's JSON type, nullable, the batch limit, Retry-After and SigV4", () => {
    const document = JSON.parse(readFileSync(OPENAPI_FILE, "utf8"));
    const energy = document.components.schemas.EnergyFeatures.properties;
    expect(Object.keys(energy)).toHaveLength(22);
    expect(energy.energy_sum_3m.type).toEqual(["number", "null"]);
    expect(energy.energy_count_3m.type).toEqual(["integer", "null"]);
    const ids = document.paths["/features/energy"].get.parameters.find(
      (p: { name: string }) => p.name === "ids",
    );
    expect(ids.schema.maxItems).toBe(100);
    expect(document.components.responses.StoreUnavailable.headers["Retry-After"].required).toBe(true);
    expect(document.components.securitySchemes.sigv4["x-amazon-apigateway-authtype"]).toBe("awsSigv4");
    expect(document.security).toEqual([{ sigv4: [] }]);
  });
});

describe("the handler's responses validate against the document", () => {
  const validate = createResponseValidator(buildOpenApiDocument(fixtureViews(), { version: "0.0.0" }));
  let store: FakeOnlineStore;
  let handler: ReturnType<typeof createGetFeaturesHandler>;

  beforeEach(() => {
    for (const stream of [process.stdout, process.stderr]) vi.spyOn(stream, "write").mockReturnValue(true);
    store = new FakeOnlineStore()
      .put("energy", energyRow("MAC000002", 2))
      .put("weather", weatherRow("MAC000002"));
    handler = createGetFeaturesHandler({
      reader: new FeatureReader(fixtureViews(), store),
      logger: new Logger({ serviceName: "feature-store-test", logLevel: "ERROR" }),
      metrics: new Metrics({ namespace: "FeatureStoreTest", serviceName: "feature-store-test" }),
    });
  });
  afterEach(() => vi.restoreAllMocks());

  const calls: Array<[FeatureCall, number]> = [
    [{ view: "energy", entityId: "MAC000002" }, 200],
    [{ view: "energy", entityId: "MAC000002", query: { features: "energy_sum,energy_std_3m" } }, 200],
    [{ view: "weather", entityId: "MAC000002" }, 200],
    [{ view: "energy,weather", entityId: "MAC000002" }, 200],
    [{ view: "energy,weather", entityId: "MAC000003" }, 404],
    [{ view: "energy", query: { ids: "MAC000002,MAC404" } }, 200],
    [{ view: "weather", query: { ids: "MAC000002", features: "sunshine_s" } }, 200],
    [{ view: "energy", entityId: "MAC999" }, 404],
    [{ view: "energy", entityId: "bad id!" }, 400],
    [{ view: "gas", entityId: "MAC000002" }, 400],
  ];
  it.each(calls)("%o answers %i with a documented body", async (call, status) => {
    const response = await handler(httpEvent(call), lambdaContext());
    expect(response.statusCode).toBe(status);
    const path =
      call.entityId === undefined ? `/features/${call.view}` : `/features/${call.view}/${call.entityId}`;
    const check = validate(path, status, JSON.parse(response.body));
    expect(check.errors).toBe("No errors");
    expect(check.valid).toBe(true);
  });

  it("a 503 and the catalog validate; a body that breaks the contract does not", async () => {
    store.getLatest = async () => {
      throw new StoreUnavailableError("down", 2);
    };
    const unavailable = await handler(httpEvent({ view: "energy", entityId: "MAC000002" }), lambdaContext());
    expect(unavailable.statusCode).toBe(503);
    expect(validate("/features/energy/MAC000002", 503, JSON.parse(unavailable.body)).valid).toBe(true);
    const catalog = await handler(viewsEvent(), lambdaContext());
    expect(validate("/views", 200, JSON.parse(catalog.body)).valid).toBe(true);

    const wrongType = { view: "energy", entityId: "a", featureDate: null, features: { energy_count: 1.5 } };
    expect(validate("/features/energy/a", 200, wrongType).valid).toBe(false);
    const unknownFeature = { view: "energy", entityId: "a", featureDate: null, features: { gas: 1 } };
    expect(validate("/features/energy/a", 200, unknownFeature).valid).toBe(false);
  });
});

// The getFeatures HTTP contract as an OpenAPI 3.1 document, generated from the feature views
// (through view-catalog.ts, as `GET /views` is) so the document cannot describe other features than
// the API serves. `npm run openapi` writes it to docs/openapi.json; a test regenerates and compares.
import type { FeatureView } from "#commons/feature-view.js";
import { MAX_BATCH_IDS, MAX_VIEWS_PER_READ } from "./feature-reader.js";
import { describeViews, type FeatureDescription, type ViewDescription } from "./view-catalog.js";

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/** "energy_daily" → "EnergyDaily", for component names. */
export function pascalCase(name: string): string {
  return name
    .split("_")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}

function featureSchema(feature: FeatureDescription): Schema {
  const base: Schema = { type: [feature.type, "null"], description: `${feature.viewType} feature` };
  // A bigint travels as its exact decimal string (a JSON number would lose precision past 2^53).
  if (feature.viewType === "bigint") return { ...base, pattern: "^-?[0-9]{1,19}$", format: "int64" };
  return base;
}

function viewSchemas(view: ViewDescription): Record<string, Schema> {
  const name = pascalCase(view.name);
  const date = { type: ["string", "null"], format: "date", description: "The day the vector describes" };
  return {
    [`${name}Features`]: {
      type: "object",
      description: `Features of view ${view.name}, in declared order; a projection returns only the requested ones.`,
      properties: Object.fromEntries(view.features.map((f) => [f.name, featureSchema(f)])),
      additionalProperties: false,
    },
    [`${name}Vector`]: {
      type: "object",
      required: ["view", "entityId", "featureDate", "features"],
      properties: {
        view: { const: view.name },
        entityId: { type: "string" },
        featureDate: date,
        features: ref(`${name}Features`),
      },
      additionalProperties: false,
    },
    [`${name}ViewVector`]: {
      description: `View ${view.name} within a multi-view read.`,
      oneOf: [
        {
          type: "object",
          required: ["found", "featureDate", "features"],
          properties: { found: { const: true }, featureDate: date, features: ref(`${name}Features`) },
          additionalProperties: false,
        },
        ref("NotFound"),
      ],
    },
    [`${name}Batch`]: {
      type: "object",
      required: ["view", "results"],
      properties: {
        view: { const: view.name },
        results: {
          type: "array",
          maxItems: MAX_BATCH_IDS,
          description: "One entry per requested id, in request order (duplicates kept).",
          items: {
            oneOf: [
              {
                type: "object",
                required: ["entityId", "found", "featureDate", "features"],
                properties: {
                  entityId: { type: "string" },
                  found: { const: true },
                  featureDate: date,
                  features: ref(`${name}Features`),
                },
                additionalProperties: false,
              },
              {
                type: "object",
                required: ["entityId", "found"],
                properties: { entityId: { type: "string" }, found: { const: false } },
                additionalProperties: false,
              },
            ],
          },
        },
      },
      additionalProperties: false,
    },
  };
}

const ERROR_CODES = ["BAD_REQUEST", "NOT_FOUND", "STORE_UNAVAILABLE", "INTERNAL"] as const;

const commonSchemas: Record<string, Schema> = {
  Error: {
    type: "object",
    description: "Every error the function answers.",
    required: ["error"],
    properties: {
      error: {
        type: "object",
        required: ["code", "message"],
        properties: { code: { enum: [...ERROR_CODES] }, message: { type: "string" } },
        additionalProperties: false,
      },
    },
    additionalProperties: false,
  },
  GatewayMessage: {
    type: "object",
    description:
      "An answer of API Gateway itself (no route: 404; IAM authorization failed: 403; the function failed: 500).",
    required: ["message"],
    properties: { message: { type: "string" } },
    additionalProperties: false,
  },
  NotFound: {
    type: "object",
    required: ["found"],
    properties: { found: { const: false } },
    additionalProperties: false,
  },
  ViewCatalog: {
    type: "object",
    required: ["views"],
    properties: {
      views: {
        type: "array",
        items: {
          type: "object",
          required: ["name", "description", "entity", "features"],
          properties: {
            name: { type: "string" },
            description: { type: "string" },
            entity: {
              type: "object",
              required: ["column", "idPattern"],
              properties: { column: { type: "string" }, idPattern: { type: "string", format: "regex" } },
              additionalProperties: false,
            },
            features: {
              type: "array",
              items: {
                type: "object",
                required: ["name", "type", "viewType", "nullable"],
                properties: {
                  name: { type: "string" },
                  type: { enum: ["number", "integer", "string"] },
                  viewType: { enum: ["double", "int", "bigint", "string"] },
                  nullable: { const: true },
                },
                additionalProperties: false,
              },
            },
          },
          additionalProperties: false,
        },
      },
    },
    additionalProperties: false,
  },
};

const json = (schema: Schema) => ({ "application/json": { schema } });

function errorResponses(notFound: boolean): Record<string, unknown> {
  return {
    "400": { $ref: "#/components/responses/BadRequest" },
    ...(notFound ? { "404": { $ref: "#/components/responses/NotFound" } } : {}),
    "403": { $ref: "#/components/responses/Forbidden" },
    "500": { $ref: "#/components/responses/Internal" },
    "503": { $ref: "#/components/responses/StoreUnavailable" },
  };
}

const commonResponses = {
  BadRequest: {
    description:
      "Unknown view or feature, malformed or too long id, 0 or more than 100 ids, more than 10 views, unknown query parameter.",
    content: json(ref("Error")),
  },
  NotFound: {
    description:
      "The entity has no row (code NOT_FOUND), or no route matches (API Gateway's `{message}` body).",
    content: json({ oneOf: [ref("Error"), ref("GatewayMessage")] }),
  },
  Forbidden: {
    description: "IAM authorization failed: unsigned, wrongly signed or expired request (API Gateway).",
    content: json(ref("GatewayMessage")),
  },
  Internal: {
    description: "Anything else; the body never carries internals.",
    content: json({ oneOf: [ref("Error"), ref("GatewayMessage")] }),
  },
  StoreUnavailable: {
    description: "The online store is unreachable or did not answer in time; retry after Retry-After.",
    headers: {
      "Retry-After": {
        description: "Seconds to wait before retrying.",
        required: true,
        schema: { type: "string", pattern: "^[0-9]+$" },
      },
    },
    content: json(ref("Error")),
  },
};

function featuresParameter(names: readonly string[] | undefined): Schema {
  return {
    name: "features",
    in: "query",
    required: false,
    description: "A projection: only these features are returned (comma-separated).",
    style: "form",
    explode: false,
    schema: {
      type: "array",
      minItems: 1,
      uniqueItems: false,
      items:
        names === undefined
          ? { type: "string", pattern: "^([a-z][a-z0-9_]{0,47}\\.)?[a-z][a-z0-9_]{0,47}$" }
          : { enum: [...names] },
    },
  };
}

const entityIdParameter = (view: ViewDescription | undefined): Schema => ({
  name: "entityId",
  in: "path",
  required: true,
  schema: { type: "string", minLength: 1, maxLength: 64, pattern: view?.entity.idPattern ?? "^.{1,64}$" },
});

function viewPaths(view: ViewDescription): Record<string, unknown> {
  const name = pascalCase(view.name);
  const names = view.features.map((f) => f.name);
  return {
    [`/features/${view.name}/{entityId}`]: {
      get: {
        operationId: `get${name}Features`,
        summary: `The latest ${view.name} vector of one entity (${view.entity.column}).`,
        tags: [view.name],
        parameters: [entityIdParameter(view), featuresParameter(names)],
        responses: {
          "200": { description: "The vector.", content: json(ref(`${name}Vector`)) },
          ...errorResponses(true),
        },
      },
    },
    [`/features/${view.name}`]: {
      get: {
        operationId: `get${name}Batch`,
        summary: `The latest ${view.name} vectors of up to ${MAX_BATCH_IDS} entities, in request order.`,
        tags: [view.name],
        parameters: [
          {
            name: "ids",
            in: "query",
            required: true,
            description: `1 to ${MAX_BATCH_IDS} entity ids, comma-separated; a missing id is marked, not an error.`,
            style: "form",
            explode: false,
            schema: {
              type: "array",
              minItems: 1,
              maxItems: MAX_BATCH_IDS,
              items: { type: "string", pattern: view.entity.idPattern },
            },
          },
          featuresParameter(names),
        ],
        responses: {
          "200": { description: "One result per id.", content: json(ref(`${name}Batch`)) },
          ...errorResponses(false),
        },
      },
    },
  };
}

export interface OpenApiOptions {
  /** The API's version (package.json). */
  readonly version: string;
}

/** The OpenAPI 3.1 document of the getFeatures HTTP API for these views. */
export function buildOpenApiDocument(
  views: ReadonlyMap<string, FeatureView>,
  options: OpenApiOptions,
): Record<string, unknown> {
  const catalog = describeViews(views);
  const schemas: Record<string, Schema> = { ...commonSchemas };
  for (const view of catalog) Object.assign(schemas, viewSchemas(view));
  const multiViewVector: Schema = {
    type: "object",
    required: ["entityId", "views"],
    properties: {
      entityId: { type: "string" },
      views: {
        type: "object",
        description: "One entry per requested view, in request order.",
        properties: Object.fromEntries(catalog.map((v) => [v.name, ref(`${pascalCase(v.name)}ViewVector`)])),
        additionalProperties: false,
      },
    },
    additionalProperties: false,
  };
  schemas.MultiViewVector = multiViewVector;

  const paths: Record<string, unknown> = {
    "/views": {
      get: {
        operationId: "listViews",
        summary: "Every view: its entity, id pattern, and features with their JSON types.",
        responses: {
          "200": { description: "The catalog.", content: json(ref("ViewCatalog")) },
          "400": { $ref: "#/components/responses/BadRequest" },
          "403": { $ref: "#/components/responses/Forbidden" },
          "500": { $ref: "#/components/responses/Internal" },
        },
      },
    },
  };
  for (const view of catalog) Object.assign(paths, viewPaths(view));
  paths["/features/{views}/{entityId}"] = {
    get: {
      operationId: "getMultiViewFeatures",
      summary: `Several views (up to ${MAX_VIEWS_PER_READ}, comma-separated) of one entity, read in parallel. 404 only when no view has the entity.`,
      parameters: [
        {
          name: "views",
          in: "path",
          required: true,
          style: "simple",
          schema: {
            type: "array",
            minItems: 1,
            maxItems: MAX_VIEWS_PER_READ,
            uniqueItems: true,
            items: { enum: catalog.map((v) => v.name) },
          },
        },
        entityIdParameter(undefined),
        featuresParameter(undefined),
      ],
      responses: {
        "200": {
          description: "With one view, that view's vector; with several, one entry per view.",
          content: json({
            oneOf: [...catalog.map((v) => ref(`${pascalCase(v.name)}Vector`)), ref("MultiViewVector")],
          }),
        },
        ...errorResponses(true),
      },
    },
  };

  return {
    openapi: "3.1.0",
    info: {
      title: "serverless-feature-store getFeatures",
      version: options.version,
      description:
        "Latest feature vectors from the online store. Generated from resources/feature-views by `npm run openapi`; do not edit. Every route requires IAM authorization: sign requests with SigV4 (service execute-api).",
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    jsonSchemaDialect: "https://spec.openapis.org/oas/3.1/dialect/base",
    servers: [
      {
        url: "https://{apiId}.execute-api.{region}.amazonaws.com",
        variables: { apiId: { default: "example" }, region: { default: "eu-west-1" } },
      },
      { url: "http://127.0.0.1:3000", description: "npm run local" },
    ],
    // IAM authorization as API Gateway's OpenAPI extension names it:
    // https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-authtype.html
    security: [{ sigv4: [] }],
    tags: catalog.map((v) => ({ name: v.name, description: v.description })),
    paths,
    components: {
      securitySchemes: {
        sigv4: {
          type: "apiKey",
          name: "Authorization",
          in: "header",
          description: "AWS Signature Version 4 (service execute-api), made with IAM credentials.",
          "x-amazon-apigateway-authtype": "awsSigv4",
        },
      },
      schemas,
      responses: commonResponses,
    },
  };
}

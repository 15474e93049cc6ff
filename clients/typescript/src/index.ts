// The getFeatures client: see README.md.
export {
  type BatchItem,
  FeatureStoreClient,
  type FeatureStoreClientOptions,
  FeatureStoreError,
  type FeatureVector,
  MAX_IDS_PER_REQUEST,
  type ViewCatalog,
  type ViewMap,
  type ViewVector,
} from "./client.js";
export type * from "./views.generated.js";

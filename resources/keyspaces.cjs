// Serverless variable source: the Keyspaces keyspace and one table per feature view, generated
// from resources/feature-views by functions/commons/online-schema.ts (the same code the local
// Cassandra schema comes from). Used as ${file(./resources/keyspaces.cjs):resources}.
const path = require("node:path");
const tsx = require("tsx/cjs/api");

const { loadFeatureViews } = tsx.require("../functions/commons/feature-view-files.ts", __filename);
const { keyspacesResources } = tsx.require("../functions/commons/online-schema.ts", __filename);

module.exports.resources = async ({ resolveVariable }) => {
  const keyspace = await resolveVariable("self:custom.keyspace");
  const views = loadFeatureViews(path.join(__dirname, "feature-views"));
  return keyspacesResources(views.values(), keyspace);
};

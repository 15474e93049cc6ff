// Stands in for adm-zip in the Lambda bundles (serverless.yml custom.esbuild.alias). cassandra-driver
// requires adm-zip when it loads, but only uses it to open DataStax Astra "secure connect bundles"
// (its `cloud` option), which the project never sets; the real module cost getFeatures' cold start
// ~37 kB and its load time (docs/PERFORMANCE.md). Any use fails loudly instead of silently.
"use strict";

module.exports = function AdmZip() {
  throw new Error(
    "adm-zip is not bundled: cassandra-driver's `cloud` (secure connect bundle) option is not supported",
  );
};

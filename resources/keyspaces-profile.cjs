// The Keyspaces driver profile the EMR step ships (spark/conf/keyspaces-application.conf) is a
// template: the stack's region fills in the endpoint, the local datacenter and the SigV4 region.
// One function, used by the deploy plugin and by the tests that load the result with the driver.
const fs = require("node:fs");
const path = require("node:path");

const PLACEHOLDER = "@AWS_REGION@";
const TEMPLATE = path.join(__dirname, "..", "spark", "conf", "keyspaces-application.conf");
// Commercial regions whose Keyspaces endpoint is cassandra.<region>.amazonaws.com.
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** The profile text for a region; throws on a malformed region or a template without the placeholder. */
function renderKeyspacesProfile(region, template = fs.readFileSync(TEMPLATE, "utf8")) {
  if (!REGION.test(region ?? "")) throw new Error(`Not an AWS region: "${region}"`);
  if (!template.includes(PLACEHOLDER)) throw new Error(`The driver profile template has no ${PLACEHOLDER}`);
  return template.replaceAll(PLACEHOLDER, region);
}

module.exports = { renderKeyspacesProfile, PLACEHOLDER, TEMPLATE };

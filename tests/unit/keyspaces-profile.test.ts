// Protects the Keyspaces driver profile the EMR step ships: rendered for the stack's region it names
// that region's endpoint on the TLS port, the region's datacenter and SigV4 region, verifies the
// endpoint's certificate, and fails fast instead of retrying an unreachable endpoint forever.
// (spark/tests/test_keyspaces_profile.py loads the same rendered text with the driver's own loader.)
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const { renderKeyspacesProfile } = createRequire(resolve("package.json"))(
  "./resources/keyspaces-profile.cjs",
) as {
  renderKeyspacesProfile(region: string, template?: string): string;
};

describe("Keyspaces driver profile", () => {
  it("names the stack region's endpoint, datacenter and SigV4 region, and nothing else", () => {
    const profile = renderKeyspacesProfile("eu-west-1");
    expect(profile).toContain('contact-points = [ "cassandra.eu-west-1.amazonaws.com:9142" ]');
    expect(profile).toContain('load-balancing-policy.local-datacenter = "eu-west-1"');
    expect(profile).toMatch(
      /auth-provider \{[^}]*class = software\.aws\.mcs\.auth\.SigV4AuthProvider[^}]*aws-region = "eu-west-1"/s,
    );
    expect(profile).toMatch(/ssl-engine-factory \{[^}]*hostname-validation = true/s);
    expect(profile).toContain("reconnect-on-init = false");
    expect(profile).not.toMatch(/@AWS_REGION@|us-east-1|KEYSPACES_REGION/);
  });

  it("refuses what is not a region instead of shipping a broken endpoint", () => {
    for (const region of ["", "eu-west", "cassandra.eu-west-1", "EU-WEST-1", 'eu-west-1" ]']) {
      expect(() => renderKeyspacesProfile(region)).toThrow(/Not an AWS region/);
    }
    expect(() => renderKeyspacesProfile("eu-west-1", "datastax-java-driver {}")).toThrow(/no @AWS_REGION@/);
  });
});

// Types for aws-sigv4-auth-cassandra-plugin, which ships none: the SigV4 auth provider for the
// DataStax/Apache Node.js driver. Without explicit keys it uses the v2 SDK's default chain.
declare module "aws-sigv4-auth-cassandra-plugin" {
  import type { auth } from "cassandra-driver";

  export class SigV4AuthProvider implements auth.AuthProvider {
    constructor(options?: {
      region?: string;
      accessKeyId?: string;
      secretAccessKey?: string;
      sessionToken?: string;
    });
    newAuthenticator(endpoint: string, name: string): auth.Authenticator;
  }
}

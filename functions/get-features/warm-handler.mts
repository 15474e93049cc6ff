// getFeatures Lambda entry (ES module). Top-level await holds Lambda's init phase until the
// online store's first connection attempt settles, so a provisioned-concurrency sandbox is frozen
// with its Keyspaces session already open; a CommonJS module cannot make init wait.
import { connected, handler as serve } from "./handler.js";

await connected;

export const handler = serve;
/** Settled before this module finishes loading; exported so the packaged bundle can be tested. */
export { connected };

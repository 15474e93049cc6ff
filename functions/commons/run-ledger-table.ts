// The run ledger's DynamoDB table, defined once: the stack (resources/*.cjs) and the local stack
// (moto) create it from these constants, and the ledger adapter relies on the same names.
// One table for every view: partition key "VIEW#<view>", sort keys "LOCK", "RUN#<runId>" and
// "FILE#<fileId>", so one Query reads a view's queued files or its runs, newest first.

export const RUN_LEDGER_KEY_SCHEMA = [
  { AttributeName: "pk", KeyType: "HASH" },
  { AttributeName: "sk", KeyType: "RANGE" },
] as const;

export const RUN_LEDGER_ATTRIBUTES = [
  { AttributeName: "pk", AttributeType: "S" },
  { AttributeName: "sk", AttributeType: "S" },
] as const;

export const RUN_LEDGER_BILLING_MODE = "PAY_PER_REQUEST" as const;

/** Epoch seconds after which DynamoDB may delete an item (finished runs and files only). */
export const RUN_LEDGER_TTL_ATTRIBUTE = "expiresAt" as const;

/** CreateTable input (without TableName) for the local stack and the tests. */
export function runLedgerTableDefinition(tableName: string) {
  return {
    TableName: tableName,
    KeySchema: RUN_LEDGER_KEY_SCHEMA.map((k) => ({ ...k })),
    AttributeDefinitions: RUN_LEDGER_ATTRIBUTES.map((a) => ({ ...a })),
    BillingMode: RUN_LEDGER_BILLING_MODE,
  };
}

// The run ledger: one DynamoDB table holding, per feature view, every raw file's state
// (received -> queued -> running -> succeeded | failed | quarantined), the runs and the per-view
// lock that keeps one feature job per view at a time. It is the run history, so it is retained
// when the stack is removed, encrypted with a KMS key and recoverable to any second of the last
// 35 days. ingest, submit, runEvents and status find it through RUN_LEDGER_TABLE.
const { ids } = require("./names.cjs");
const security = require("./security.cjs");

// The key schema the functions write against: one definition, shared with the local stack, which
// creates the moto table from it (functions/commons/run-ledger-table.ts).
const tsx = require("tsx/cjs/api");
const { RUN_LEDGER_KEY_SCHEMA, RUN_LEDGER_ATTRIBUTES, RUN_LEDGER_TTL_ATTRIBUTE } = tsx.require(
  "../functions/commons/run-ledger-table.ts",
  __filename,
);

function runLedgerTableName({ service, stage }) {
  return `${service}-${stage}-run-ledger`;
}

function runLedgerResources(ctx) {
  return {
    [ids.runLedgerTable]: security.withSkips(
      {
        Type: "AWS::DynamoDB::Table",
        DeletionPolicy: "Retain",
        UpdateReplacePolicy: "Retain",
        Properties: {
          TableName: runLedgerTableName(ctx),
          KeySchema: RUN_LEDGER_KEY_SCHEMA,
          AttributeDefinitions: RUN_LEDGER_ATTRIBUTES,
          // A handful of writes per file and run: on-demand costs nothing while nothing arrives.
          BillingMode: "PAY_PER_REQUEST",
          TimeToLiveSpecification: { AttributeName: RUN_LEDGER_TTL_ATTRIBUTE, Enabled: true },
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          // SSEEnabled: the AWS managed key aws/dynamodb (KMS, visible in CloudTrail) instead of
          // the AWS owned default; the stack's customer-managed key when that param is on.
          SSESpecification: security.tableEncryption(ctx),
        },
      },
      security.tableSkips(ctx),
    ),
  };
}

module.exports = {
  RUN_LEDGER_KEY_SCHEMA,
  RUN_LEDGER_ATTRIBUTES,
  RUN_LEDGER_TTL_ATTRIBUTE,
  runLedgerTableName,
  runLedgerResources,
};

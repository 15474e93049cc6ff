// Protects what the DynamoDB ledger adapter adds over the in-memory store the orchestration tests
// use: the exact condition and update expressions it sends, attribute values that survive the
// round trip, a failed condition reported as false (and nothing else swallowed), Query paging
// up to a limit, and the SNS alert's subject kept within what Publish accepts.
import "aws-sdk-client-mock-vitest/extend";
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { snsAlerts } from "#commons/run-adapters.js";
import { DynamoDbRunLedgerStore, type LedgerItem } from "#commons/run-ledger-store.js";

const dynamoMock = mockClient(DynamoDBClient);
const snsMock = mockClient(SNSClient);
const ledger = new DynamoDbRunLedgerStore("fs-runs", new DynamoDBClient({ region: "eu-west-1" }));

const conditionFailed = () =>
  new ConditionalCheckFailedException({ message: "The conditional request failed", $metadata: {} });

beforeEach(() => {
  dynamoMock.reset();
  snsMock.reset();
});

describe("DynamoDbRunLedgerStore", () => {
  it("writes every ledger value type and reads the same item back", async () => {
    const item: LedgerItem = {
      pk: "VIEW#energy",
      sk: "RUN#r-1",
      attempt: 2,
      done: false,
      stepId: null,
      files: ["a", "b"],
      window: { from: "2012-10-12", days: 3, nested: [true, { x: 1.5 }] },
    };
    dynamoMock.on(PutItemCommand).resolves({});
    expect(await ledger.put(item)).toBe(true);
    const sent = dynamoMock.commandCalls(PutItemCommand)[0]?.args[0].input;
    expect(sent).toEqual({
      TableName: "fs-runs",
      Item: {
        pk: { S: "VIEW#energy" },
        sk: { S: "RUN#r-1" },
        attempt: { N: "2" },
        done: { BOOL: false },
        stepId: { NULL: true },
        files: { L: [{ S: "a" }, { S: "b" }] },
        window: {
          M: {
            from: { S: "2012-10-12" },
            days: { N: "3" },
            nested: { L: [{ BOOL: true }, { M: { x: { N: "1.5" } } }] },
          },
        },
      },
    });

    dynamoMock.on(GetItemCommand).resolves({ Item: sent?.Item });
    expect(await ledger.get("VIEW#energy", "RUN#r-1")).toEqual(item);
    expect(dynamoMock).toHaveReceivedCommandWith(GetItemCommand, {
      TableName: "fs-runs",
      Key: { pk: { S: "VIEW#energy" }, sk: { S: "RUN#r-1" } },
      ConsistentRead: true,
    });
  });

  it("reads a missing item as undefined", async () => {
    dynamoMock.on(GetItemCommand).resolves({});
    expect(await ledger.get("VIEW#energy", "LOCK")).toBeUndefined();
  });

  it("sends 'absent OR every attribute equals' as one condition expression", async () => {
    dynamoMock.on(PutItemCommand).resolves({});
    await ledger.put(
      { pk: "VIEW#energy", sk: "LOCK", owner: "r-2" },
      { ifAbsent: true, equals: { owner: "r-1", heldUntil: null } },
    );
    expect(dynamoMock).toHaveReceivedCommandWith(PutItemCommand, {
      ConditionExpression: "attribute_not_exists(#a0) OR (#a1 = :v0 AND attribute_not_exists(#a2))",
      ExpressionAttributeNames: { "#a0": "pk", "#a1": "owner", "#a2": "heldUntil" },
      ExpressionAttributeValues: { ":v0": { S: "r-1" } },
    });
  });

  it("sets and removes attributes in one update, under its condition", async () => {
    dynamoMock.on(UpdateItemCommand).resolves({});
    const applied = await ledger.update(
      "VIEW#energy",
      "FILE#f-1",
      { state: "running", runId: "r-3", error: undefined },
      { equals: { state: "queued" } },
    );
    expect(applied).toBe(true);
    expect(dynamoMock).toHaveReceivedCommandWith(UpdateItemCommand, {
      TableName: "fs-runs",
      Key: { pk: { S: "VIEW#energy" }, sk: { S: "FILE#f-1" } },
      UpdateExpression: "SET #a0 = :v0, #a1 = :v1 REMOVE #a2",
      ConditionExpression: "(#a0 = :v2)",
      ExpressionAttributeNames: { "#a0": "state", "#a1": "runId", "#a2": "error" },
      ExpressionAttributeValues: { ":v0": { S: "running" }, ":v1": { S: "r-3" }, ":v2": { S: "queued" } },
    });
  });

  it("reports a condition that did not hold as false, for puts and updates", async () => {
    dynamoMock.on(PutItemCommand).rejects(conditionFailed());
    dynamoMock.on(UpdateItemCommand).rejects(conditionFailed());
    expect(await ledger.put({ pk: "VIEW#energy", sk: "LOCK" }, { ifAbsent: true })).toBe(false);
    expect(await ledger.update("VIEW#energy", "LOCK", { owner: "x" }, { equals: { owner: "y" } })).toBe(
      false,
    );
  });

  it("lets every other DynamoDB error through (throttling is not a lost race)", async () => {
    const throttled = new ProvisionedThroughputExceededException({ message: "slow down", $metadata: {} });
    dynamoMock.on(PutItemCommand).rejects(throttled);
    dynamoMock.on(UpdateItemCommand).rejects(throttled);
    await expect(ledger.put({ pk: "VIEW#energy", sk: "LOCK" }, { ifAbsent: true })).rejects.toBe(throttled);
    await expect(ledger.update("VIEW#energy", "LOCK", { owner: "x" })).rejects.toBe(throttled);
  });

  it("pages a Query until the limit, asking only for what is still missing", async () => {
    const file = (n: number) => ({ pk: { S: "VIEW#energy" }, sk: { S: `FILE#${n}` } });
    const lastKey = { pk: { S: "VIEW#energy" }, sk: { S: "FILE#2" } };
    dynamoMock
      .on(QueryCommand)
      .resolvesOnce({ Items: [file(1), file(2)], LastEvaluatedKey: lastKey })
      .resolvesOnce({ Items: [file(3)], LastEvaluatedKey: file(3) });
    const items = await ledger.query("VIEW#energy", "FILE#", { newestFirst: true, limit: 3 });
    expect(items.map((i) => i.sk)).toEqual(["FILE#1", "FILE#2", "FILE#3"]);
    expect(dynamoMock).toHaveReceivedCommandTimes(QueryCommand, 2);
    expect(dynamoMock).toHaveReceivedNthCommandWith(QueryCommand, 1, {
      TableName: "fs-runs",
      KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
      ExpressionAttributeValues: { ":pk": { S: "VIEW#energy" }, ":prefix": { S: "FILE#" } },
      ScanIndexForward: false,
      ConsistentRead: true,
      Limit: 3,
    });
    expect(dynamoMock).toHaveReceivedNthCommandWith(QueryCommand, 2, {
      Limit: 1,
      ExclusiveStartKey: lastKey,
    });
  });

  it("reads a whole partition for an empty prefix (begins_with refuses one), to its end", async () => {
    dynamoMock
      .on(QueryCommand)
      .resolvesOnce({
        Items: [{ pk: { S: "VIEW#energy" }, sk: { S: "LOCK" } }],
        LastEvaluatedKey: { x: { S: "1" } },
      })
      .resolvesOnce({ Items: [{ pk: { S: "VIEW#energy" }, sk: { S: "RUN#1" } }] });
    const items = await ledger.query("VIEW#energy", "");
    expect(items.map((i) => i.sk)).toEqual(["LOCK", "RUN#1"]);
    const first = dynamoMock.commandCalls(QueryCommand)[0]?.args[0].input;
    expect(first).toMatchObject({
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": { S: "VIEW#energy" } },
      ScanIndexForward: true,
    });
    expect(first).not.toHaveProperty("Limit");
  });

  it("refuses an attribute type the ledger never writes instead of misreading it", async () => {
    dynamoMock.on(GetItemCommand).resolves({
      Item: { pk: { S: "VIEW#energy" }, sk: { S: "LOCK" }, tags: { SS: ["a"] } },
    });
    await expect(ledger.get("VIEW#energy", "LOCK")).rejects.toThrow(/unsupported DynamoDB attribute type SS/);
  });
});

describe("snsAlerts", () => {
  it("publishes to the topic with a subject SNS accepts (printable ASCII, at most 100 characters)", async () => {
    snsMock.on(PublishCommand).resolves({ MessageId: "m-1" });
    const topicArn = "arn:aws:sns:eu-west-1:123456789012:feature-store-dev-alerts";
    const alerts = snsAlerts(topicArn, new SNSClient({ region: "eu-west-1" }));
    await alerts.publish(`run of view énergie failed\n${"x".repeat(120)}`, "details");
    expect(snsMock).toHaveReceivedCommandWith(PublishCommand, {
      TopicArn: topicArn,
      Subject: `run of view ?nergie failed?${"x".repeat(73)}`,
      Message: "details",
    });
  });
});

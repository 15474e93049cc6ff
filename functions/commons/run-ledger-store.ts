// The run ledger's storage port and its DynamoDB adapter. The orchestration (feature-runs.ts)
// needs four things of a store: read one item, write one item only if a condition holds, change
// some attributes only if a condition holds, and read one partition by sort-key prefix. DynamoDB
// gives exactly that with ConditionExpression (attribute-level conditions, enforced by the service
// and by moto), which is why the ledger lives there rather than in S3 (If-Match only guards a whole
// object, and listing "queued files of a view" would mean a LIST plus one GET per file).
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";

export type LedgerValue = string | number | boolean | null | LedgerValue[] | { [key: string]: LedgerValue };
export type LedgerItem = { readonly pk: string; readonly sk: string } & Record<string, LedgerValue>;

/**
 * A write condition: the item is absent, OR every listed attribute equals its value (null: the
 * attribute is absent). With neither, the write is unconditional.
 */
export interface LedgerCondition {
  readonly ifAbsent?: boolean;
  readonly equals?: Readonly<Record<string, string | number | null>>;
}

export interface RunLedgerStore {
  get(pk: string, sk: string): Promise<LedgerItem | undefined>;
  /** Writes the item if the condition holds; false when it did not. */
  put(item: LedgerItem, condition?: LedgerCondition): Promise<boolean>;
  /** Sets (undefined: removes) attributes if the condition holds; false when it did not. */
  update(
    pk: string,
    sk: string,
    changes: Readonly<Record<string, LedgerValue | undefined>>,
    condition?: LedgerCondition,
  ): Promise<boolean>;
  /** Items of a partition whose sort key starts with the prefix, in sort-key order. */
  query(
    pk: string,
    skPrefix: string,
    options?: { readonly newestFirst?: boolean; readonly limit?: number },
  ): Promise<LedgerItem[]>;
}

// --- DynamoDB attribute values (the SDK's AttributeValue union) ---

export function marshal(value: LedgerValue): AttributeValue {
  if (value === null) return { NULL: true };
  if (typeof value === "string") return { S: value };
  if (typeof value === "number") return { N: String(value) };
  if (typeof value === "boolean") return { BOOL: value };
  if (Array.isArray(value)) return { L: value.map(marshal) };
  return { M: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, marshal(v)])) };
}

/** The inverse of marshal; a type the ledger never writes (sets, binary) is a corrupt item. */
export function unmarshal(value: AttributeValue): LedgerValue {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.L !== undefined) return value.L.map(unmarshal);
  if (value.M !== undefined)
    return Object.fromEntries(Object.entries(value.M).map(([k, v]) => [k, unmarshal(v)]));
  throw new Error(`run ledger: unsupported DynamoDB attribute type ${Object.keys(value).join(",")}`);
}

function unmarshalItem(item: Record<string, AttributeValue>): LedgerItem {
  return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, unmarshal(v)])) as LedgerItem;
}

/** Builds expression names/values with stable placeholders. */
class Expression {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, AttributeValue> = {};
  #n = 0;
  name(attribute: string): string {
    const placeholder = `#a${Object.keys(this.names).length}`;
    const existing = Object.entries(this.names).find(([, a]) => a === attribute)?.[0];
    if (existing) return existing;
    this.names[placeholder] = attribute;
    return placeholder;
  }
  value(v: LedgerValue): string {
    const placeholder = `:v${this.#n++}`;
    this.values[placeholder] = marshal(v);
    return placeholder;
  }
  condition(condition: LedgerCondition | undefined): string | undefined {
    if (!condition) return undefined;
    const parts: string[] = [];
    if (condition.ifAbsent) parts.push(`attribute_not_exists(${this.name("pk")})`);
    const equals = Object.entries(condition.equals ?? {}).map(([attribute, v]) =>
      v === null
        ? `attribute_not_exists(${this.name(attribute)})`
        : `${this.name(attribute)} = ${this.value(v)}`,
    );
    if (equals.length > 0) parts.push(`(${equals.join(" AND ")})`);
    return parts.length > 0 ? parts.join(" OR ") : undefined;
  }
  params(): {
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues?: Record<string, AttributeValue>;
  } {
    return {
      ...(Object.keys(this.names).length > 0 ? { ExpressionAttributeNames: this.names } : {}),
      ...(Object.keys(this.values).length > 0 ? { ExpressionAttributeValues: this.values } : {}),
    };
  }
}

/** A condition that did not hold; every other error is the caller's to see. */
function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException;
}

/** Sends a conditional write: true when it was applied, false when its condition did not hold. */
async function conditionally(send: () => Promise<unknown>): Promise<boolean> {
  try {
    await send();
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/**
 * The ledger in one DynamoDB table (functions/commons/run-ledger-table.ts), strongly consistent
 * reads. The client is the caller's: one per process (runDependencies, the status handler).
 */
export class DynamoDbRunLedgerStore implements RunLedgerStore {
  constructor(
    private readonly tableName: string,
    private readonly dynamodb: DynamoDBClient,
  ) {}

  async get(pk: string, sk: string): Promise<LedgerItem | undefined> {
    const response = await this.dynamodb.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: pk }, sk: { S: sk } },
        ConsistentRead: true,
      }),
    );
    return response.Item ? unmarshalItem(response.Item) : undefined;
  }

  async put(item: LedgerItem, condition?: LedgerCondition): Promise<boolean> {
    const expression = new Expression();
    const conditionText = expression.condition(condition);
    return conditionally(() =>
      this.dynamodb.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: Object.fromEntries(Object.entries(item).map(([k, v]) => [k, marshal(v)])),
          ...(conditionText ? { ConditionExpression: conditionText } : {}),
          ...expression.params(),
        }),
      ),
    );
  }

  async update(
    pk: string,
    sk: string,
    changes: Readonly<Record<string, LedgerValue | undefined>>,
    condition?: LedgerCondition,
  ): Promise<boolean> {
    const expression = new Expression();
    const sets: string[] = [];
    const removes: string[] = [];
    for (const [attribute, v] of Object.entries(changes)) {
      if (v === undefined) removes.push(expression.name(attribute));
      else sets.push(`${expression.name(attribute)} = ${expression.value(v)}`);
    }
    const conditionText = expression.condition(condition);
    const update = [
      ...(sets.length > 0 ? [`SET ${sets.join(", ")}`] : []),
      ...(removes.length > 0 ? [`REMOVE ${removes.join(", ")}`] : []),
    ].join(" ");
    return conditionally(() =>
      this.dynamodb.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: pk }, sk: { S: sk } },
          UpdateExpression: update,
          ...(conditionText ? { ConditionExpression: conditionText } : {}),
          ...expression.params(),
        }),
      ),
    );
  }

  async query(
    pk: string,
    skPrefix: string,
    options: { readonly newestFirst?: boolean; readonly limit?: number } = {},
  ): Promise<LedgerItem[]> {
    const items: LedgerItem[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const response = await this.dynamodb.send(
        new QueryCommand({
          TableName: this.tableName,
          // begins_with refuses an empty prefix: then the whole partition.
          KeyConditionExpression: skPrefix ? "pk = :pk AND begins_with(sk, :prefix)" : "pk = :pk",
          ExpressionAttributeValues: {
            ":pk": { S: pk },
            ...(skPrefix ? { ":prefix": { S: skPrefix } } : {}),
          },
          ScanIndexForward: !options.newestFirst,
          ConsistentRead: true,
          ...(options.limit ? { Limit: options.limit - items.length } : {}),
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...(response.Items ?? []).map(unmarshalItem));
      start = response.LastEvaluatedKey;
    } while (start && (options.limit === undefined || items.length < options.limit));
    return items;
  }
}

/**
 * The same semantics in memory: the unit tests' fake, and the reference the DynamoDB adapter is
 * checked against in tests/integration. `fail` injects a crash before a matching write.
 */
export class InMemoryRunLedgerStore implements RunLedgerStore {
  readonly items = new Map<string, LedgerItem>();
  fail:
    | ((op: "put" | "update", pk: string, sk: string, changes: Record<string, unknown>) => boolean)
    | undefined;

  private static id(pk: string, sk: string): string {
    return `${pk}\u0000${sk}`;
  }

  private holds(item: LedgerItem | undefined, condition: LedgerCondition | undefined): boolean {
    if (!condition || (!condition.ifAbsent && !condition.equals)) return true;
    if (condition.ifAbsent && item === undefined) return true;
    if (!condition.equals || item === undefined) return false;
    return Object.entries(condition.equals).every(([attribute, v]) =>
      v === null ? item[attribute] === undefined : item[attribute] === v,
    );
  }

  private crash(op: "put" | "update", pk: string, sk: string, changes: Record<string, unknown>): void {
    if (this.fail?.(op, pk, sk, changes)) throw new Error(`injected crash before ${op} ${pk} ${sk}`);
  }

  async get(pk: string, sk: string): Promise<LedgerItem | undefined> {
    const item = this.items.get(InMemoryRunLedgerStore.id(pk, sk));
    return item ? structuredClone(item) : undefined;
  }

  async put(item: LedgerItem, condition?: LedgerCondition): Promise<boolean> {
    this.crash("put", item.pk, item.sk, item);
    const id = InMemoryRunLedgerStore.id(item.pk, item.sk);
    if (!this.holds(this.items.get(id), condition)) return false;
    this.items.set(id, structuredClone(item));
    return true;
  }

  async update(
    pk: string,
    sk: string,
    changes: Readonly<Record<string, LedgerValue | undefined>>,
    condition?: LedgerCondition,
  ): Promise<boolean> {
    this.crash("update", pk, sk, changes);
    const id = InMemoryRunLedgerStore.id(pk, sk);
    const current = this.items.get(id);
    if (!this.holds(current, condition)) return false;
    const next: Record<string, LedgerValue> = { ...(current ?? { pk, sk }) };
    for (const [attribute, v] of Object.entries(changes)) {
      if (v === undefined) delete next[attribute];
      else next[attribute] = structuredClone(v);
    }
    this.items.set(id, next as LedgerItem);
    return true;
  }

  async query(
    pk: string,
    skPrefix: string,
    options: { readonly newestFirst?: boolean; readonly limit?: number } = {},
  ): Promise<LedgerItem[]> {
    const found = [...this.items.values()]
      .filter((item) => item.pk === pk && item.sk.startsWith(skPrefix))
      .sort((a, b) => (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : 0));
    if (options.newestFirst) found.reverse();
    return structuredClone(options.limit ? found.slice(0, options.limit) : found);
  }
}

// Keeps the local Cassandra's timestamp guardrails measured from the wall clock, as Keyspaces measures
// its window (docs/AWS_CONTRACTS.md K1, G7). Cassandra computes the 2-days-back / 5-minutes-ahead limits
// from the last timestamp the node generated itself (Guardrails.java, ClientState.getLastTimestampMicros),
// and every client here sends its own timestamps: after ~5 quiet minutes the node would refuse a publish
// stamped now, which Keyspaces takes. A lightweight transaction makes the node take a fresh timestamp;
// with a condition that cannot hold (IF EXISTS on an entity id no view row has) it writes nothing.
import type { Client } from "cassandra-driver";

/** An entity id that never holds a row (a later reader would see it as absent). */
export const CLOCK_ENTITY_ID = "__local_clock__";

export interface CassandraClockTarget {
  readonly keyspace: string;
  readonly table: string;
}

export class CassandraClock {
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Client,
    private readonly target: CassandraClockTarget,
    private readonly warn: (message: string) => void = () => {},
  ) {}

  /** One tick: the node's clock base is now. Never writes a row. */
  async tick(): Promise<void> {
    const { keyspace, table } = this.target;
    await this.client.execute(
      `UPDATE ${keyspace}.${table} SET feature_date = null WHERE entity_id = ? IF EXISTS`,
      [CLOCK_ENTITY_ID],
      { prepare: true },
    );
  }

  /** Ticks now and then every `intervalMs` (well inside the 5-minute window) until stop(). */
  start(intervalMs = 60_000): void {
    const tick = () =>
      void this.tick().catch((error: unknown) =>
        this.warn(`could not refresh the node's timestamp clock: ${(error as Error).message}`),
      );
    tick();
    this.#timer = setInterval(tick, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

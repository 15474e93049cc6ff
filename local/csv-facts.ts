// Small facts about a raw CSV file the local pipeline prints and checks: its content hash, the
// entity ids it holds and each one's last day. Streams the file, so a large one is fine.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";

export interface CsvFacts {
  readonly sha256: string;
  readonly rows: number;
  /** Entity id → last day present (ISO date). */
  readonly lastDay: ReadonlyMap<string, string>;
}

export async function csvFacts(path: string, entityColumn: string, dateColumn: string): Promise<CsvFacts> {
  const hashed = sha256File(path);
  const lastDay = new Map<string, string>();
  let rows = 0;
  let entityIndex = -1;
  let dateIndex = -1;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    if (entityIndex < 0) {
      const header = line
        .replace(/^\uFEFF/, "")
        .split(",")
        .map((c) => c.trim().replace(/^"|"$/g, ""));
      entityIndex = header.indexOf(entityColumn);
      dateIndex = header.indexOf(dateColumn);
      if (entityIndex < 0 || dateIndex < 0) {
        lines.close();
        break;
      }
      continue;
    }
    if (line.trim() === "") continue;
    rows += 1;
    const cells = line.split(",");
    const id = cells[entityIndex];
    const day = cells[dateIndex];
    if (!id || !day) continue;
    const seen = lastDay.get(id);
    if (seen === undefined || day > seen) lastDay.set(id, day);
  }
  return { sha256: await hashed, rows, lastDay };
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

// A few readable lines from the feature job's run summary (the JSON the job writes to
// --summary-uri, see spark/feature_store/job.py). Unknown shapes are printed as JSON, trimmed.
interface JobSummary {
  status?: string;
  error?: string;
  message?: string;
  input_rows?: number;
  accepted_rows?: number;
  rejected_rows?: number;
  rejected_by_reason?: Record<string, number>;
  offline?: {
    rows_written?: number;
    rows_inserted?: number;
    rows_updated?: number;
    rows_unchanged?: number;
    entities_written?: number;
    first_date?: string;
    last_date?: string;
    delta_version?: number;
    table_uri?: string;
  };
  online?: { rows_upserted?: number; keyspace?: string; table?: string };
  timings?: Record<string, number>;
}

export function summaryLines(raw: unknown): string[] {
  const summary = (raw ?? {}) as JobSummary;
  if (typeof raw !== "object" || raw === null || summary.status === undefined) {
    const lines = (JSON.stringify(raw, null, 2) ?? "null").split("\n");
    return lines.length > 30 ? [...lines.slice(0, 30), `  … (${lines.length - 30} more lines)`] : lines;
  }
  const lines = [`  status   ${summary.status}${summary.error ? `: ${summary.error}` : ""}`];
  if (summary.message) lines.push(`           ${summary.message}`);
  if (summary.input_rows !== undefined) {
    const reasons = Object.entries(summary.rejected_by_reason ?? {})
      .map(([reason, n]) => `${reason} ${n}`)
      .join(", ");
    lines.push(
      `  rows     ${summary.input_rows} read, ${summary.accepted_rows ?? "?"} accepted, ` +
        `${summary.rejected_rows ?? 0} rejected${reasons ? ` (${reasons})` : ""}`,
    );
  }
  const off = summary.offline;
  if (off) {
    lines.push(
      `  offline  Delta version ${off.delta_version}: ${off.rows_written} rows written ` +
        `(${off.rows_inserted} new, ${off.rows_updated} updated, ${off.rows_unchanged ?? 0} unchanged), ` +
        `${off.entities_written} entities, ${off.first_date} … ${off.last_date}`,
    );
  }
  const on = summary.online;
  if (on)
    lines.push(`  online   ${on.rows_upserted} latest vectors upserted into ${on.keyspace}.${on.table}`);
  if (summary.timings) {
    lines.push(
      `  timings  ${Object.entries(summary.timings)
        .map(([name, s]) => `${name.replace(/_s$/, "")} ${s.toFixed(1)} s`)
        .join(", ")}`,
    );
  }
  return lines;
}

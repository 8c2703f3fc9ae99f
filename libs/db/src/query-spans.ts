import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { LogEvent } from "kysely";
import { tracer } from "@cls/telemetry";

/**
 * A span per query inside a traced call, timed from what Kysely measured. The statement is
 * the compiled SQL with $n placeholders, so no values (and no personal data) are recorded.
 */
export function recordQuerySpan(event: LogEvent): void {
  if (!trace.getActiveSpan()) return;
  const end = Date.now();
  const sqlText = event.query.sql;
  const span = tracer().startSpan("db.query", {
    kind: SpanKind.CLIENT,
    startTime: end - event.queryDurationMillis,
    attributes: {
      "db.system.name": "postgresql",
      "db.operation.name": sqlText.trimStart().split(/\s+/, 1)[0]?.toLowerCase() ?? "",
      "db.query.text": sqlText.length > 2_000 ? `${sqlText.slice(0, 2_000)}…` : sqlText,
    },
  });
  if (event.level === "error") span.setStatus({ code: SpanStatusCode.ERROR });
  span.end(end);
}

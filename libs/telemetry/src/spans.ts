import { SpanKind, SpanStatusCode, trace, type Attributes, type Span } from "@opentelemetry/api";

export const tracer = () => trace.getTracer("cls");

/** Runs `work` inside a child span of the active one, recording failure. */
export async function inSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
  return tracer().startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : "error" });
      throw error;
    } finally {
      span.end();
    }
  });
}

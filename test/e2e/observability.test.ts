import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { startTelemetry, type Telemetry } from "@cls/telemetry";
import { enrolledServer, seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { freePort } from "../support/ports.js";

const IPV4 = /\b(?:\d{1,3}\.){3}\d{1,3}\b/;

/**
 * One public call is one trace across every hop (public call, lock, Postgres, outbox relay,
 * notification), and the metrics an SRE alerts on are scraped for Prometheus. No address
 * appears in any span attribute or metric label (SPEC L13).
 */
describe("traces and metrics", () => {
  const spans = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let metricsPort: number;
  let t: TestMesh;

  beforeAll(async () => {
    metricsPort = await freePort();
    telemetry = startTelemetry({ serviceName: "cls-test", spanExporter: spans, metricsPort, metricsHost: "127.0.0.1" });
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
    await telemetry?.shutdown();
  });

  it("follows a refused acquire from the public call to the stored notification in one trace", async () => {
    const { accountId, poolId, model } = await seedAccount(t, { count: 1 });
    const server = await enrolledServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", model, "9.2");
    await server.addCamera("enc-1", "cam-1");
    spans.reset();

    await expect(server.addCamera("enc-1", "cam-2")).rejects.toThrow(/no free/);
    await t.mesh.modules.allocation.context.outbox.flush();

    const all = spans.getFinishedSpans();
    const publicCall = all.find((s) => s.name === "cls.allocation.v1.AllocationService/AcquireLicence" && s.kind === 1);
    expect(publicCall).toBeDefined();
    const trace = all.filter((s) => s.spanContext().traceId === publicCall!.spanContext().traceId);
    const names = new Set(trace.map((s) => s.name));
    for (const hop of [
      "lock.acquire",
      "allocation.grant_batch",
      "db.query",
      "outbox.relay",
      "cls.notification.v1.NotificationAdminService/IngestEvents",
    ]) {
      expect(names, hop).toContain(hop);
    }
    // The notification service's own queries hang under its server span, in the same trace.
    const ingestServer = trace.find((s) => s.name === "cls.notification.v1.NotificationAdminService/IngestEvents" && s.kind === 1)!;
    expect(trace.some((s) => s.name === "db.query" && parentOf(s) === ingestServer.spanContext().spanId)).toBe(true);
    // Every span of the trace reaches the public call through its parents.
    const byId = new Map(trace.map((s) => [s.spanContext().spanId, s]));
    for (const span of trace) {
      let cursor: ReadableSpan | undefined = span;
      while (cursor && cursor !== publicCall) cursor = byId.get(parentOf(cursor) ?? "");
      expect(cursor, span.name).toBe(publicCall);
    }
    for (const span of all) {
      for (const [key, value] of Object.entries(span.attributes)) expect(`${key}=${String(value)}`).not.toMatch(IPV4);
    }
  });

  it("exports RPC, licence, pool and outbox metrics for Prometheus, without addresses", async () => {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await response.text();
    expect(response.status).toBe(200);
    expect(text).toMatch(/cls_rpc_requests_total\{[^}]*rpc_method="AcquireLicence"[^}]*code="ResourceExhausted"/);
    expect(text).toMatch(/cls_rpc_duration_seconds_bucket\{[^}]*rpc_method="AcquireLicence"/);
    expect(text).toMatch(/cls_allocations_total\{[^}]*outcome="granted"/);
    expect(text).toMatch(/cls_allocations_total\{[^}]*outcome="refused"/);
    expect(text).toMatch(/cls_pool_used\{[^}]*pool_id="pool_/);
    expect(text).toMatch(/cls_pool_capacity\{/);
    expect(text).toMatch(/cls_lock_wait_seconds_bucket/);
    expect(text).toMatch(/cls_outbox_lag_seconds\{[^}]*source="allocation"/);
    const labels = text.split("\n").filter((line) => !line.startsWith("#")).map((line) => line.split(" ")[0] ?? "");
    for (const label of labels) expect(label).not.toMatch(IPV4);
  });
});

function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

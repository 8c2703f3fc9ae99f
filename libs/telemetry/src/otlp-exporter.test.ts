import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { otlpSpanExporter } from "./otlp-exporter.js";

describe("otlpSpanExporter", () => {
  const received: { url: string; contentType: string; bytes: number }[] = [];
  const collector = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ url: request.url ?? "", contentType: request.headers["content-type"] ?? "", bytes: Buffer.concat(chunks).length });
      response.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  let endpoint = "";

  beforeAll(async () => {
    await new Promise<void>((done) => collector.listen(0, "127.0.0.1", done));
    endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((done) => collector.close(() => done())));

  it("sends spans as OTLP protobuf to <endpoint>/v1/traces", async () => {
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: otlpSpanExporter(endpoint) })] });
    provider.getTracer("test").startSpan("exported").end();
    await provider.forceFlush();
    await provider.shutdown();
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ url: "/v1/traces", contentType: "application/x-protobuf" });
    expect(received[0]!.bytes).toBeGreaterThan(0);
  });
});

import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AllocationService } from "@cls/proto";
import { startProcess, type StartedProcess } from "../support/process.js";

/** A stand-in OpenTelemetry collector: remembers every OTLP/HTTP trace export it receives. */
function startCollector(): Promise<{ url: string; exports: Buffer[]; server: Server }> {
  const exports: Buffer[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") exports.push(Buffer.concat(chunks));
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      resolve({ url: `http://127.0.0.1:${port}`, exports, server });
    }),
  );
}

/** With OTEL_EXPORTER_OTLP_ENDPOINT set, a public call's spans leave the process over OTLP. */
describe("traces exported over OTLP", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "cls-otlp-"));
  let cls: StartedProcess | undefined;
  let collector: Awaited<ReturnType<typeof startCollector>> | undefined;
  afterAll(async () => {
    await cls?.stop();
    collector?.server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("sends the spans of a public call to the collector, flushing them at shutdown", async () => {
    collector = await startCollector();
    cls = startProcess(process.execPath, ["--import", "tsx", "services/all-in-one/src/main.ts"], {
      CLS_DATA_DIR: dataDir,
      PUBLIC_PORT: "0",
      INTERNAL_PORT: "0",
      METRICS_PORT: "0",
      DATABASE_URL: "",
      REDIS_URL: "",
      LOG_LEVEL: "warn",
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    });
    const [, publicUrl] = await cls.waitFor(/public API[^:]*: (https:\/\/\S+)/);
    const cert = readFileSync(join(dataDir, "tls", "tls.crt"), "utf8");
    const allocation = createClient(AllocationService, createConnectTransport({ baseUrl: publicUrl!, httpVersion: "2", nodeOptions: { ca: cert } }));
    await allocation.getLeaseKey({});

    expect(await cls.stop()).toBe(0);

    const exported = Buffer.concat(collector.exports).toString("latin1");
    expect(exported).toContain("cls.allocation.v1.AllocationService/GetLeaseKey");
    expect(exported).toContain("service.name");
  }, 60_000);
});

import http2 from "node:http2";
import net from "node:net";
import { format } from "node:util";
import { createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EdgeVisClient, spkiPinOfPem } from "@cls/edgevis-client";
import { rawPublicKey } from "@cls/lease";
import { startTelemetry, type Telemetry } from "@cls/telemetry";
import { freePort } from "../support/ports.js";
import { findIpAddresses, linesWithIpAddresses } from "./support/addresses.js";
import { everyRowAsText, pgDump } from "./support/database.js";
import { startObservedMesh, type ObservedMesh } from "./support/observed-mesh.js";
import { drainOutboxes } from "./support/outbox.js";
import { publicClients, refusal } from "./support/public-api.js";
import { MODEL, seedTenant, type Tenant } from "./support/tenant.js";

/**
 * SPEC L13: CLS stores only what licensing needs. After the whole licensing flow is run from a
 * distinctive address (127.0.0.2), through an ingress that offers that address to the services
 * in `x-forwarded-for`, `x-real-ip` and `forwarded`, and connects to them from it, no IP address
 * at all is in the database, any log line, any span, the metrics or Redis.
 */
const CLIENT_ADDRESS = "127.0.0.2";
const DAY_MS = 24 * 3600 * 1000;

describe("privacy: no IP address is kept anywhere (SPEC L13)", () => {
  const spans = new InMemorySpanExporter();
  const consoleLines: string[] = [];
  let telemetry: Telemetry;
  let metricsPort: number;
  let t: ObservedMesh;
  let tenant: Tenant;
  let revokedServerId: string;
  /** Audit actions of the failed attempts that were audited. */
  const auditedFailures: string[] = [];

  beforeAll(async () => {
    // Whatever a library prints rather than logs counts as a log line too.
    for (const method of ["log", "info", "warn", "error", "debug", "trace"] as const) {
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void consoleLines.push(format(...args)));
    }
    metricsPort = await freePort();
    telemetry = startTelemetry({ serviceName: "cls-privacy", spanExporter: spans, metricsPort, metricsHost: "127.0.0.1" });
    t = await startObservedMesh({ clientAddress: CLIENT_ADDRESS });
  });
  afterAll(async () => {
    await t?.close();
    await telemetry?.shutdown();
    vi.restoreAllMocks();
  });

  it("recognises addresses in every spelling, and versions, times and ids as none", () => {
    expect(findIpAddresses("peer 127.0.0.2 via ::ffff:127.0.0.2 and [fe80::1%lo] or ::1, 10.0.0.1:443, 2001:db8::8a2e:370:7334")).toEqual(
      expect.arrayContaining(["127.0.0.2", "::ffff:127.0.0.2", "fe80::1", "::1", "10.0.0.1", "2001:db8::8a2e:370:7334"]),
    );
    expect(findIpAddresses('firmware 9.2.1 and 8.4.0.12345, at 2026-11-28T10:20:03.123Z, 10:20:03, "time":"12:00", key_0a1b::c, srv_0123456789abcdef')).toEqual([]);
  });

  it("runs the whole licensing flow from 127.0.0.2", { timeout: 60_000 }, async () => {
    // Enrollment, a v9 encoder whose cameras take both licences, a v8 encoder, an API key, a webhook.
    tenant = await seedTenant(t, "privacy", { count: 2, cameras: 2, webhook: true });
    const server = tenant.server;

    // A refusal for lack of licences, a release, another acquisition, the daily check.
    expect((await refusal(server.addCamera(tenant.encoderId, "camera-refused"))).code).toBe(Code.ResourceExhausted);
    expect(await server.removeCamera(tenant.encoderId, tenant.cameraIds[0]!)).toBe(true);
    await server.addCamera(tenant.encoderId, "camera-after-release");
    const outcomes = await server.dailyCheck([
      { encoderId: tenant.encoderId, firmwareVersion: "9.2.1" },
      { encoderId: tenant.legacyEncoderId, firmwareVersion: "8.4.0" },
    ]);
    expect(outcomes.every((o) => o.errorCode === "")).toBe(true);
    await expect(server.registerEncoder("old-encoder", MODEL, "7.9.0")).rejects.toThrow(/9\./);

    // The customer: an enrollment code for a second server, which it then revokes; a pool switch.
    const customer = tenant.asCustomer;
    const { enrollmentCode } = await customer.account.newEnrollmentCode({ poolId: tenant.poolId });
    const second = t.edgeVisServer();
    const secondIdentity = await second.enroll(enrollmentCode, "privacy-second-site");
    await second.registerEncoder("second-encoder", MODEL, "9.2.1");
    await customer.account.revokeAccountServer({ serverId: secondIdentity.serverId });
    revokedServerId = secondIdentity.serverId;
    await customer.allocation.switchPool({ serverId: tenant.serverId, poolId: tenant.otherPoolId });
    await customer.allocation.listAllocations({ includeEnded: true });
    await customer.pools.listPools({});
    await customer.account.listAccountServers({});

    // A key rotation by the first server.
    const { privateKey } = generateKeyPairSync("ed25519");
    const asServer = publicClients(t, { token: await server.accessToken() });
    const { challenge } = await asServer.identity.createChallenge({ serverId: tenant.serverId });
    await asServer.identity.rotateKey({ newPublicKey: rawPublicKey(createPublicKey(privateKey)), challenge, signature: sign(null, challenge, privateKey) });
    const rotated = new EdgeVisClient({
      baseUrl: t.publicUrl,
      ca: t.tls.cert,
      tlsPins: [spkiPinOfPem(t.tls.cert)],
      leaseKeys: [{ keyId: t.mesh.leaseSigner.keyId, publicKey: t.mesh.leaseSigner.publicKey }],
      identity: { ...server.identity!, privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString() },
    });
    await rotated.pools.listPools({});

    // Failed credentials, which are audited (and rate-limited) but must not record who tried. The
    // brute-force limits are shared through Redis, so an attempt may meet a limit instead (and
    // then is not audited one by one).
    const anonymous = publicClients(t);
    const failedAttempt = async (call: Promise<unknown>, code: Code, action: string) => {
      const refused = await refusal(call);
      expect([code, Code.ResourceExhausted]).toContain(refused.code);
      if (refused.code === code) auditedFailures.push(action);
    };
    await failedAttempt(t.edgeVisServer().enroll(enrollmentCode, "reused-code"), Code.AlreadyExists, "enrollment.failed");
    const guessed = enrollmentCode.slice(0, -1) + (enrollmentCode.endsWith("A") ? "B" : "A");
    await failedAttempt(t.edgeVisServer().enroll(guessed, "guessed-code"), Code.Unauthenticated, "enrollment.failed");
    await failedAttempt(anonymous.identity.exchangeApiKey({ apiKey: `cls_${tenant.apiKeyId}_${"A".repeat(43)}` }), Code.Unauthenticated, "api_key.exchange_failed");
    const { challenge: another } = await anonymous.identity.createChallenge({ serverId: tenant.serverId });
    const stranger = generateKeyPairSync("ed25519").privateKey;
    await failedAttempt(
      anonymous.identity.authenticate({ serverId: tenant.serverId, challenge: another, signature: sign(null, another, stranger) }),
      Code.Unauthenticated,
      "server.authentication_failed",
    );
    expect((await refusal(publicClients(t, { token: "not-a-token" }).pools.listPools({}))).code).toBe(Code.Unauthenticated);

    // Rude clients: plain text at the TLS port, and a call abandoned halfway through its body.
    await rudeClients(t.publicUrl, t.tls.cert);

    // Notifications reach the account, and the scheduled jobs run days later (silence, reclaim, deliveries).
    await drainOutboxes(t);
    const { notifications } = await rotated.notifications.listNotifications({});
    expect(notifications.map((n) => n.type)).toEqual(expect.arrayContaining(["acquisition.refused", "server.enrolled", "server.revoked"]));
    t.clock.advance(8 * DAY_MS);
    for (const module of Object.values(t.mesh.modules)) await module.runJobs?.();
    await drainOutboxes(t);
    // Days later the customer signs in again and looks at what happened.
    const later = publicClients(t, { token: (await anonymous.identity.exchangeApiKey({ apiKey: tenant.apiKey })).accessToken });
    const { notifications: afterJobs } = await later.notifications.listNotifications({ limit: 500 });
    expect(afterJobs.map((n) => n.type)).toEqual(expect.arrayContaining(["server.silent"]));
    await later.notifications.listWebhooks({});
    await later.notifications.listDeadLetters({});
  });

  it("really came from 127.0.0.2: the ingress and the services saw that address as the peer, and were offered it in headers", () => {
    const seen = t.observed;
    expect(seen.relayLocalAddresses.length).toBeGreaterThan(0);
    expect(new Set(seen.relayLocalAddresses)).toEqual(new Set([CLIENT_ADDRESS]));
    expect(seen.clientPeers.length).toBeGreaterThan(0);
    expect(new Set(seen.clientPeers)).toEqual(new Set([CLIENT_ADDRESS]));
    // The ingress's connections to the four services come from the address too: it is the peer every service saw.
    expect(seen.upstreamLocalAddresses.length).toBe(4);
    expect(new Set(seen.upstreamLocalAddresses)).toEqual(new Set([CLIENT_ADDRESS]));
    expect(seen.forwardedHeaders.length).toBeGreaterThan(20);
    expect(seen.forwardedHeaders[0]).toEqual({ "x-forwarded-for": CLIENT_ADDRESS, "x-real-ip": CLIENT_ADDRESS, forwarded: `for=${CLIENT_ADDRESS};proto=https` });
    // So the checks below can fail: the address is in the harness's own record.
    expect(findIpAddresses(JSON.stringify(seen))).toContain(CLIENT_ADDRESS);
  });

  it("puts no IP address in the database: not in a pg_dump, not in any row of any table", async () => {
    const dump = await pgDump(t.database.url);
    const rows = await everyRowAsText(t.database.url);
    // The dump holds the flow's data: the accounts, servers, allocations, audit and events.
    expect(dump).toContain(tenant.serverId);
    for (const action of auditedFailures) expect(rows).toContain(action);
    expect(dump).not.toContain(CLIENT_ADDRESS);
    expect(linesWithIpAddresses(dump)).toEqual([]);
    expect(linesWithIpAddresses(rows)).toEqual([]);
  });

  it("writes no IP address in any log line, at level trace", () => {
    const lines = [...t.logLines, ...consoleLines];
    // Every service logged its calls, so the capture works.
    expect(t.logLines.filter((line) => line.includes('"msg":"rpc"')).length).toBeGreaterThan(30);
    for (const method of ["AcquireLicence", "ListPools", "Enroll", "ListNotifications", "ExchangeApiKey"]) {
      expect(t.logLines.some((line) => line.includes(`/${method}"`)), method).toBe(true);
    }
    const text = lines.join("\n");
    expect(text).not.toContain(CLIENT_ADDRESS);
    expect(linesWithIpAddresses(text)).toEqual([]);
  });

  it("records no IP address in any span: names, attributes, events, status or resource", () => {
    const finished = spans.getFinishedSpans();
    expect(finished.some((s) => s.name === "cls.allocation.v1.AllocationService/AcquireLicence")).toBe(true);
    expect(finished.some((s) => s.name === "cls.server_identity.v1.ServerIdentityService/Enroll")).toBe(true);
    const text = finished
      .map((span) =>
        JSON.stringify({
          name: span.name,
          attributes: span.attributes,
          events: span.events.map((e) => ({ name: e.name, attributes: e.attributes })),
          status: span.status,
          links: span.links.map((l) => l.attributes),
          resource: span.resource.attributes,
          scope: span.instrumentationScope,
        }),
      )
      .join("\n");
    expect(text).not.toContain(CLIENT_ADDRESS);
    expect(linesWithIpAddresses(text)).toEqual([]);
  });

  it("exports no IP address in the Prometheus metrics", async () => {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await response.text();
    expect(response.status).toBe(200);
    expect(text).toMatch(/cls_rpc_requests_total\{[^}]*rpc_method="AcquireLicence"/);
    expect(text).not.toContain(CLIENT_ADDRESS);
    expect(linesWithIpAddresses(text)).toEqual([]);
  });

  it("keeps no IP address in Redis: not in a key, not in a value", async () => {
    const entries: string[] = [];
    for (const pattern of [...t.redisPrefixes.map((p) => `${p}*`), "cls:bruteforce:*"]) {
      let cursor = "0";
      do {
        const [next, keys] = await t.redis.scan(cursor, "MATCH", pattern, "COUNT", 500);
        cursor = next;
        for (const key of keys) {
          const type = await t.redis.type(key);
          const value = type === "string" ? await t.redis.get(key) : type === "hash" ? JSON.stringify(await t.redis.hgetall(key)) : `(${type})`;
          entries.push(`${key} = ${value}`);
        }
      } while (cursor !== "0");
    }
    // The run left its marks: the revoked server is on the revocation list.
    expect(entries.some((entry) => entry.includes(`server:${revokedServerId}`))).toBe(true);
    const text = entries.join("\n");
    expect(text).not.toContain(CLIENT_ADDRESS);
    expect(linesWithIpAddresses(text)).toEqual([]);
    // Nothing anywhere in Redis is named after the address either.
    const [, named] = await t.redis.scan("0", "MATCH", `*${CLIENT_ADDRESS}*`, "COUNT", 100_000);
    expect(named).toEqual([]);
  });
});

/** Misbehaving clients from the distinctive address: plain text at a TLS port, a request cut off mid-body. */
async function rudeClients(publicUrl: string, ca: string): Promise<void> {
  const { port } = new URL(publicUrl);
  await new Promise<void>((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port: Number(port) }, () => socket.end("GET / HTTP/1.1\r\nHost: cls\r\n\r\n"));
    socket.on("error", () => resolve());
    socket.on("close", () => resolve());
    socket.resume();
  });
  await new Promise<void>((resolve) => {
    const session = http2.connect(publicUrl, { ca });
    session.on("error", () => resolve());
    const stream = session.request({ ":method": "POST", ":path": "/cls.allocation.v1.AllocationService/AcquireLicence", "content-type": "application/proto" });
    stream.on("error", () => {});
    stream.write(Buffer.from([0x0a, 0x40, 0x41]), () => {
      setTimeout(() => {
        session.destroy();
        resolve();
      }, 50);
    });
  });
}

import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { vi } from "vitest";
import { DAY_MS } from "@cls/clock";
import { sql } from "@cls/db";
import { EdgeVisClient, pinnedIdentityCheck, spkiPinOfPem, type ServerIdentity } from "@cls/edgevis-client";
import { AccountService, AllocationService, EncoderKind, NotificationService, PoolService, ServerIdentityService, type Notification } from "@cls/proto";
import type { TestMesh } from "../support/mesh.js";

/**
 * Helpers for the FAQ scenarios. Every scenario runs against `startTestMesh()`: four services
 * on their own ports behind one HTTPS ingress, real Postgres and Redis, and one ManualClock
 * shared by every service, which the scenarios advance to move through days.
 */

export const DAY = DAY_MS;
export { EncoderKind };

/**
 * An EdgeVis Server's client, pinned to this CLS, that signs a fresh challenge before every
 * call. The library caches its access token by the machine's wall clock, but CLS judges the
 * token by the shared ManualClock; once a scenario moves that clock forward a cached token
 * would be "expired" to CLS and never refreshed by the client. Re-authenticating every call
 * keeps the server working across any jump of the clock, as a real server's would over days.
 */
export function newServerClient(t: TestMesh, options: { baseUrl?: string; identity?: ServerIdentity; cacheToken?: boolean } = {}): EdgeVisClient {
  return new EdgeVisClient({
    baseUrl: options.baseUrl ?? t.publicUrl,
    ca: t.tls.cert,
    tlsPins: [spkiPinOfPem(t.tls.cert)],
    leaseKeys: [{ keyId: t.mesh.leaseSigner.keyId, publicKey: t.mesh.leaseSigner.publicKey }],
    // cacheToken: the library's own caching, for bulk set-up while the clock stands still.
    ...(options.cacheToken ? {} : { tokenMarginMs: 1_000 * 365 * DAY_MS }),
    ...(options.identity ? { identity: options.identity } : {}),
  });
}

/** Enrolls a new EdgeVis Server into a pool with a vendor-made enrollment code (SPEC L11). */
export async function enrollServer(t: TestMesh, accountId: string, poolId: string, name = "site-1"): Promise<EdgeVisClient> {
  const { enrollmentCode } = await t.vendor.identity.createEnrollmentCode({ accountId, poolId });
  const server = newServerClient(t);
  await server.enroll(enrollmentCode, name);
  return server;
}

/** Vendor staff add a licence type unless it is already in the catalogue (SPEC L1: types are data). */
export async function ensureLicenceType(t: TestMesh, licenceType: string, description = licenceType): Promise<void> {
  const { licenceTypes } = await t.vendor.pools.listLicenceTypes({});
  if (!licenceTypes.some((type) => type.licenceType === licenceType)) await t.vendor.pools.createLicenceType({ licenceType, description });
}

/** The EVVR Container model: v9 licensing from 9.0, cameras use `evvr-camera` (SPEC L1a, L6). */
export async function putContainerModel(t: TestMesh, model = "evvr-container"): Promise<{ model: string; licenceType: string }> {
  await ensureLicenceType(t, "evvr-camera", "One camera on an EVVR Container");
  await t.vendor.pools.putEncoderModel({ model: { model, licenceType: "evvr-camera", kind: EncoderKind.CONTAINER, minV9Version: "9.0" } });
  return { model, licenceType: "evvr-camera" };
}

/** A pool for an existing account, expiring `expiresInMs` from the shared clock's now. */
export async function createPool(t: TestMesh, accountId: string, name: string, counts: Record<string, number>, expiresInMs = 365 * DAY) {
  const { pool } = await t.vendor.pools.createPool({ accountId, name, expiresAt: at(t, expiresInMs), counts });
  return pool!;
}

/** A timestamp `offsetMs` from the shared clock's now. */
export function at(t: TestMesh, offsetMs: number): Timestamp {
  return timestampFromDate(new Date(t.clock.now().getTime() + offsetMs));
}

export function ms(timestamp: Timestamp | undefined): number {
  if (!timestamp) throw new Error("missing timestamp");
  return timestampDate(timestamp).getTime();
}

/** Awaits a call that must be refused, and returns its Connect error. */
export async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  let result: unknown;
  try {
    result = await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error(`expected the call to be refused, but it answered ${JSON.stringify(result, (_k, v) => (typeof v === "bigint" ? v.toString() : v))}`);
}

/** Awaits a vendor (gRPC) call that must be refused, and returns its status code and message. */
export async function vendorRefusal(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await call;
  } catch (error) {
    return error as { code: number; details: string };
  }
  throw new Error("expected the vendor call to be refused, but it succeeded");
}

export { Code };

/** The entitlements of one pool as the customer's server lists them (SPEC L2). */
export async function poolAsListed(server: EdgeVisClient, poolId: string) {
  const { pools } = await server.pools.listPools({});
  const pool = pools.find((p) => p.poolId === poolId);
  if (!pool) throw new Error(`pool ${poolId} is not listed`);
  return {
    pool,
    byType: Object.fromEntries(pool.entitlements.map((e) => [e.licenceType, { total: e.total, used: e.used, free: e.free }])),
  };
}

const PRODUCING_SCHEMAS = ["pool", "allocation", "server_identity"] as const;

/**
 * Waits until every service's outbox has delivered everything recorded so far to the
 * notification service (SPEC L15), flushing the allocation relay directly and letting the
 * others' relays run. After it, an account's notification list is complete.
 */
export async function drainOutboxes(t: TestMesh): Promise<void> {
  await vi.waitFor(
    async () => {
      await t.mesh.modules.allocation.context.outbox.flush();
      for (const schema of PRODUCING_SCHEMAS) {
        const { rows } = await sql<{ pending: string }>`select count(*) as pending from ${sql.id(schema, "outbox")} where delivered_at is null`.execute(
          t.database.handle.root,
        );
        if (Number(rows[0]?.pending ?? 0) !== 0) throw new Error(`${schema} outbox still has ${rows[0]?.pending} undelivered events`);
      }
    },
    { timeout: 15_000, interval: 100 },
  );
}

/** The account's notifications of one type, oldest first, after every outbox is drained. */
export async function notificationsOf(t: TestMesh, accountId: string, type: string): Promise<(Notification & { data: Record<string, unknown> })[]> {
  await drainOutboxes(t);
  const { notifications } = await t.vendor.notifications.listAccountNotifications({ accountId, type, limit: 500 });
  return notifications
    .map((n) => ({ ...n, data: JSON.parse(n.dataJson) as Record<string, unknown> }))
    .sort((a, b) => ms(a.occurredAt) - ms(b.occurredAt));
}

/** Runs every service's scheduled jobs once, at the shared clock's now. */
export async function runAllJobs(t: TestMesh): Promise<void> {
  for (const module of Object.values(t.mesh.modules)) await module.runJobs?.();
}

/** A Connect client of the public API that sends no credentials at all. */
export function anonymousClients(t: TestMesh, headers: Record<string, string> = {}) {
  const inject: Interceptor = (next) => async (req) => {
    for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
    return next(req);
  };
  const transport = createConnectTransport({
    baseUrl: t.publicUrl,
    httpVersion: "2",
    interceptors: [inject],
    nodeOptions: { ca: t.tls.cert, checkServerIdentity: pinnedIdentityCheck([spkiPinOfPem(t.tls.cert)]) },
  });
  return {
    allocation: createClient(AllocationService, transport),
    pools: createClient(PoolService, transport),
    notifications: createClient(NotificationService, transport),
    identity: createClient(ServerIdentityService, transport),
    account: createClient(AccountService, transport),
  };
}

export interface CustomerClients {
  allocation: Client<typeof AllocationService>;
  pools: Client<typeof PoolService>;
  notifications: Client<typeof NotificationService>;
  account: Client<typeof AccountService>;
}

/**
 * A customer calling the public API with an account API key (SPEC L14): vendor staff create
 * the key; every call exchanges it for a short-lived token first (so the shared clock can move).
 */
export async function customerClients(t: TestMesh, accountId: string): Promise<CustomerClients> {
  const { secret } = await t.vendor.identity.createApiKey({ accountId, name: "operations team" });
  const exchange = anonymousClients(t).identity;
  const bearer: Interceptor = (next) => async (req) => {
    const { accessToken } = await exchange.exchangeApiKey({ apiKey: secret });
    req.header.set("authorization", `Bearer ${accessToken}`);
    return next(req);
  };
  const transport = createConnectTransport({
    baseUrl: t.publicUrl,
    httpVersion: "2",
    interceptors: [bearer],
    nodeOptions: { ca: t.tls.cert, checkServerIdentity: pinnedIdentityCheck([spkiPinOfPem(t.tls.cert)]) },
  });
  return {
    allocation: createClient(AllocationService, transport),
    pools: createClient(PoolService, transport),
    notifications: createClient(NotificationService, transport),
    account: createClient(AccountService, transport),
  };
}

/**
 * A pass-through HTTPS front that records the path of every call an EdgeVis Server makes to
 * CLS, so a scenario can show exactly when a server connects (SPEC L8).
 */
export async function startCallRecorder(t: TestMesh): Promise<{ url: string; calls: string[]; close(): Promise<void> }> {
  const calls: string[] = [];
  let upstream: http2.ClientHttp2Session | undefined;
  const session = () => {
    if (!upstream || upstream.closed || upstream.destroyed) upstream = http2.connect(t.publicUrl, { ca: t.tls.cert });
    return upstream;
  };
  const server = http2.createSecureServer({ cert: t.tls.cert, key: t.tls.key });
  server.on("stream", (stream, headers) => {
    calls.push(String(headers[":path"] ?? ""));
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!name.startsWith(":") || name === ":method" || name === ":path") forwarded[name] = value;
    }
    const request = session().request(forwarded);
    let trailers: http2.IncomingHttpHeaders | undefined;
    request.on("response", (responseHeaders) => {
      const { ":status": status, ...rest } = responseHeaders;
      stream.respond({ ":status": status ?? 502, ...rest }, { waitForTrailers: true });
    });
    request.on("trailers", (received) => (trailers = received));
    stream.on("wantTrailers", () => stream.sendTrailers(trailers ?? {}));
    request.on("error", () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    stream.on("error", () => request.close(http2.constants.NGHTTP2_CANCEL));
    stream.pipe(request);
    request.pipe(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    calls,
    async close() {
      upstream?.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The licensing calls among recorded paths, without the sign-in calls that precede each. */
export function licensingCalls(paths: readonly string[]): string[] {
  return paths.filter((path) => !/\/(CreateChallenge|Authenticate)$/.test(path)).map((path) => path.split("/").pop()!);
}

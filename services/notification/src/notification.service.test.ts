import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenIssuer, createTokenVerifier, parsePublicKeysPem, type TokenIssuer } from "@cls/auth";
import { HOUR_MS, ManualClock } from "@cls/clock";
import { newId } from "@cls/db";
import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { NotificationAdminService, NotificationService } from "@cls/proto";
import { authInterceptor, loadOrCreateSelfSignedTls, startServers, type RunningServers, type TlsMaterial } from "@cls/server";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { anEvent, eventSeries } from "./events.fixture.js";
import { createNotificationModule, migrateNotification } from "./module.js";

const logger = pino({ level: "silent" });
const clock = new ManualClock();
const tlsDir = mkdtempSync(join(tmpdir(), "cls-notification-"));
let database: TestDatabase;
let servers: RunningServers;
let tls: TlsMaterial;
let issuer: TokenIssuer;
let admin: Client<typeof NotificationAdminService>;

beforeAll(async () => {
  database = await createTestDatabase();
  await migrateNotification(database.handle.root);
  const module = createNotificationModule({ root: database.handle.root, clock, logger });
  issuer = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock, ttlMs: HOUR_MS });
  const verifier = createTokenVerifier(parsePublicKeysPem(issuer.publicKeyPem), { clock });
  tls = await loadOrCreateSelfSignedTls(tlsDir);
  servers = await startServers({
    logger,
    public: { port: 0, host: "127.0.0.1", tls, services: module.publicServices, interceptors: [authInterceptor(verifier, new Set())] },
    internal: { port: 0, host: "127.0.0.1", services: module.internalServices },
    readiness: [],
  });
  admin = createClient(NotificationAdminService, createGrpcTransport({ baseUrl: servers.internalUrl }));
});

afterAll(async () => {
  await servers?.close(1_000);
  await database?.drop();
  rmSync(tlsDir, { recursive: true, force: true });
});

/** The public client of an enrolled server of `accountId`, or an anonymous one. */
async function serverClient(accountId?: string): Promise<Client<typeof NotificationService>> {
  const interceptors: Interceptor[] = [];
  if (accountId) {
    const { token } = await issuer.issueServerToken(newId("srv"), accountId);
    interceptors.push((next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    });
  }
  const transport = createConnectTransport({ baseUrl: servers.publicUrl, httpVersion: "2", nodeOptions: { ca: tls.cert }, interceptors });
  return createClient(NotificationService, transport);
}

async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

describe("ListNotifications", () => {
  // SPEC L11: a server touches only its own account; SPEC L14: it sees its notifications.
  it("shows a caller only its own account's notifications, newest first", async () => {
    const mine = newId("acc");
    const theirs = newId("acc");
    const [older, newer] = eventSeries(mine, 2);
    const foreign = eventSeries(theirs, 3);
    await admin.ingestEvents({ events: [older!, ...foreign, newer!] });

    const mineListed = (await (await serverClient(mine)).listNotifications({})).notifications;
    expect(mineListed.map((n) => n.eventId)).toEqual([newer!.eventId, older!.eventId]);
    expect(mineListed.every((n) => n.accountId === mine)).toBe(true);

    const theirsListed = (await (await serverClient(theirs)).listNotifications({})).notifications;
    expect(theirsListed.map((n) => n.eventId).sort()).toEqual(foreign.map((e) => e.eventId).sort());
  });

  it("returns only events of the requested type", async () => {
    const accountId = newId("acc");
    const expired = anEvent(accountId, { type: "pool.expired" });
    await admin.ingestEvents({ events: [anEvent(accountId, { type: "server.enrolled" }), expired] });

    const { notifications } = await (await serverClient(accountId)).listNotifications({ type: "pool.expired" });
    expect(notifications.map((n) => n.eventId)).toEqual([expired.eventId]);
  });

  it("returns 50 by default, the newest `limit` on request, and refuses a limit above 500", async () => {
    const accountId = newId("acc");
    const events = eventSeries(accountId, 60);
    await admin.ingestEvents({ events });
    const client = await serverClient(accountId);
    const newestFirst = events.map((e) => e.eventId).reverse();

    expect((await client.listNotifications({})).notifications.map((n) => n.eventId)).toEqual(newestFirst.slice(0, 50));
    expect((await client.listNotifications({ limit: 2 })).notifications.map((n) => n.eventId)).toEqual(newestFirst.slice(0, 2));
    const error = await rejection(client.listNotifications({ limit: 501 }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("limit: must be from 1 to 500");
  });

  it("refuses a call without an access token", async () => {
    const error = await rejection((await serverClient()).listNotifications({}));
    expect(error.code).toBe(Code.Unauthenticated);
  });
});

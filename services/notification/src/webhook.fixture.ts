import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createClient, createRouterTransport, type Client } from "@connectrpc/connect";
import { pino } from "pino";
import { createTokenIssuer, createTokenVerifier, parsePublicKeysPem, type TokenIssuer } from "@cls/auth";
import { HOUR_MS, ManualClock } from "@cls/clock";
import { newId } from "@cls/db";
import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { NotificationAdminService, NotificationService } from "@cls/proto";
import type { ServiceModule } from "@cls/runtime";
import { authInterceptor, errorInterceptor } from "@cls/server";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { createNotificationModule, migrateNotification, type NotificationModuleDeps } from "./module.js";

const silent = pino({ level: "silent" });

/** A notification module on a fresh database, with public clients as customers and servers. */
export interface NotificationHarness {
  database: TestDatabase;
  clock: ManualClock;
  module: ServiceModule;
  admin: Client<typeof NotificationAdminService>;
  /** The public API as a customer (API key) of `accountId`. */
  asCustomer(accountId: string): Promise<Client<typeof NotificationService>>;
  /** The public API as an enrolled server of `accountId`. */
  asServer(accountId: string): Promise<Client<typeof NotificationService>>;
  /** Another module (another replica) on the same database and clock. */
  replica(deps?: Partial<NotificationModuleDeps>): ServiceModule;
  close(): Promise<void>;
}

/** Never fires during a test: tests drive the worker with runJobs(). */
const NO_INTERVAL_MS = 24 * HOUR_MS;

export async function startNotificationHarness(deps: Partial<NotificationModuleDeps> = {}): Promise<NotificationHarness> {
  const database = await createTestDatabase();
  await migrateNotification(database.handle.root);
  const clock = new ManualClock(new Date("2030-01-01T00:00:00Z"));
  const logger = deps.logger ?? silent;
  const modules: ServiceModule[] = [];
  const replica = (more: Partial<NotificationModuleDeps> = {}) => {
    const module = createNotificationModule({ root: database.handle.root, clock, deliveryIntervalMs: NO_INTERVAL_MS, ...deps, logger, ...more });
    modules.push(module);
    return module;
  };
  const module = replica();
  const issuer: TokenIssuer = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock, ttlMs: HOUR_MS });
  const verifier = createTokenVerifier(parsePublicKeysPem(issuer.publicKeyPem), { clock });
  /** A fresh token on every call, so moving the clock never expires it. */
  const publicClient = (token: () => Promise<{ token: string }>) =>
    createClient(
      NotificationService,
      createRouterTransport(
        (router) => {
          for (const binding of module.publicServices) router.service(binding.service, binding.impl);
        },
        {
          router: { interceptors: [errorInterceptor(silent), authInterceptor(verifier, new Set())] },
          transport: {
            interceptors: [
              (next) => async (req) => {
                req.header.set("authorization", `Bearer ${(await token()).token}`);
                return next(req);
              },
            ],
          },
        },
      ),
    );
  const admin = createClient(
    NotificationAdminService,
    createRouterTransport(
      (router) => {
        for (const binding of module.internalServices) router.service(binding.service, binding.impl);
      },
      { router: { interceptors: [errorInterceptor(silent)] } },
    ),
  );
  return {
    database,
    clock,
    module,
    admin,
    asCustomer: async (accountId) => {
      const keyId = newId("key");
      return publicClient(() => issuer.issueCustomerToken(keyId, accountId));
    },
    asServer: async (accountId) => {
      const serverId = newId("srv");
      return publicClient(() => issuer.issueServerToken(serverId, accountId));
    },
    replica,
    async close() {
      for (const m of modules) await m.stop();
      await database.drop();
    },
  };
}

/** A request the endpoint received. */
export interface ReceivedDelivery {
  headers: IncomingHttpHeaders;
  body: string;
  /** Whether `cls-signature` verified against the endpoint's secret. */
  signatureValid: boolean;
  /** The signature's `t`. */
  signedAt: number | undefined;
}

/** What the endpoint does with a request: answer with a status, or never answer. */
export type EndpointBehaviour = number | "hang";

/**
 * A customer's webhook endpoint: a real HTTP server on 127.0.0.1, port 0, addressed by the
 * host name `localhost` (IP literals are refused as targets). It checks each signature.
 */
export interface TestEndpoint {
  url: string;
  received: ReceivedDelivery[];
  /** Set once the webhook exists: the secret signatures are checked against. */
  secret: string;
  behaviour: EndpointBehaviour | ((delivery: ReceivedDelivery) => EndpointBehaviour);
  close(): Promise<void>;
}

export function verifySignature(secret: string, header: string | undefined, body: string): { valid: boolean; t: number | undefined } {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? "");
  if (!match) return { valid: false, t: undefined };
  const expected = createHmac("sha256", secret).update(`${match[1]}.${body}`).digest();
  const given = Buffer.from(match[2]!, "hex");
  return { valid: given.length === expected.length && timingSafeEqual(given, expected), t: Number(match[1]) };
}

export async function startTestEndpoint(path = "/hooks/cls"): Promise<TestEndpoint> {
  const hanging = new Set<import("node:http").ServerResponse>();
  const endpoint: TestEndpoint = {
    url: "",
    received: [],
    secret: "",
    behaviour: 204,
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const header = req.headers["cls-signature"];
      const { valid, t } = verifySignature(endpoint.secret, typeof header === "string" ? header : undefined, body);
      const delivery: ReceivedDelivery = { headers: req.headers, body, signatureValid: valid, signedAt: t };
      endpoint.received.push(delivery);
      const behaviour = typeof endpoint.behaviour === "function" ? endpoint.behaviour(delivery) : endpoint.behaviour;
      if (behaviour === "hang") {
        hanging.add(res);
        return;
      }
      res.writeHead(behaviour).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint.url = `http://localhost:${(server.address() as AddressInfo).port}${path}`;
  return endpoint;
}

/** A `localhost` URL on which nothing listens: connections are refused. */
export async function refusingUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://localhost:${port}/hooks`;
}

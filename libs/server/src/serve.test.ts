import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import https from "node:https";
import { createPublicKey, X509Certificate } from "node:crypto";
import { createInternalSigner, createInternalVerifier } from "@cls/auth";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { ServiceError } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError } from "@cls/errors";
import { AccountSchema, Health, HealthCheckResponse_ServingStatus as Status, PoolAdminService, PoolSchema, PoolService } from "@cls/proto";
import { createVendorClient, GrpcStatus } from "@cls/vendor-client";
import { actorOf } from "./caller.js";
import { bind, startServers, type RunningServers, type ServiceBinding } from "./serve.js";
import { internalAuthInterceptor } from "./internal-auth-interceptor.js";
import { loadOrCreateSelfSignedTls, spkiPin, type TlsMaterial } from "./tls.js";
import type { ReadinessCheck } from "./health.js";

const tlsDir = mkdtempSync(join(tmpdir(), "cls-serve-test-"));
let tls: TlsMaterial;
const started: RunningServers[] = [];
const gates: Array<() => void> = [];

beforeAll(async () => {
  tls = await loadOrCreateSelfSignedTls(tlsDir);
});

afterAll(async () => {
  for (const open of gates) open();
  await Promise.all(started.map((servers) => servers.close(1_000)));
  rmSync(tlsDir, { recursive: true, force: true });
});

/** A gate a handler can wait on, and a signal that the handler got there. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let arrived!: () => void;
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  gates.push(open);
  return { open, opened, reached, arrive: () => arrived() };
}

/** Servers on port 0 with a tiny public PoolService and a partial internal PoolAdminService. */
async function start(options: { readiness?: ReadinessCheck[]; readMaxBytes?: number } = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const slow = gate();
  let publicMode: "ok" | "bug" | "slow" = "ok";
  const adminImpl: Partial<ServiceImpl<typeof PoolAdminService>> = {
      async createAccount(req, ctx) {
        if (req.name === "bad") throw new InvalidArgumentError("name", "is required");
        if (req.name === "boom") throw new Error("secret detail of a bug");
        if (req.name === "slow") {
          slow.arrive();
          await slow.opened;
        }
        return { account: create(AccountSchema, { accountId: actorOf(ctx), name: req.name }) };
      },
  };
  // Only CreateAccount is implemented: the others answer `unimplemented`.
  const internalAdmin: ServiceBinding = { service: PoolAdminService, impl: adminImpl as ServiceBinding["impl"] };
  const servers = await startServers({
    logger,
    public: {
      port: 0,
      host: "127.0.0.1",
      tls,
      services: [
        bind(PoolService, {
          async listPools() {
            if (publicMode === "bug") throw new Error("secret detail of a bug");
            if (publicMode === "slow") {
              slow.arrive();
              await slow.opened;
            }
            return { pools: [create(PoolSchema, { poolId: "pool_1", name: "2026 purchase" })] };
          },
        }),
      ],
    },
    internal: { port: 0, host: "127.0.0.1", services: [internalAdmin], interceptors: [internalAuthInterceptor(staffVerifier)] },
    readiness: options.readiness ?? [],
    ...(options.readMaxBytes ? { readMaxBytes: options.readMaxBytes } : {}),
  });
  started.push(servers);
  return { servers, lines, slow, setPublicMode: (mode: typeof publicMode) => (publicMode = mode) };
}

/** A Connect unary call with a JSON body over HTTP/1.1 (node:https), trusting the self-signed certificate. */
function postJson(baseUrl: string, path: string, body: string): Promise<{ status: number; httpVersion: string; json: any }> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      new URL(path, baseUrl),
      { method: "POST", ca: tls.cert, agent: false, headers: { "content-type": "application/json", "connect-protocol-version": "1" } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: response.statusCode ?? 0, httpVersion: response.httpVersion, json: text ? JSON.parse(text) : undefined });
        });
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

const actor = { actor: "staff:alice@vendor.example", privateKeyPem: generateEd25519PrivateKeyPem() };
const staffVerifier = createInternalVerifier([
  { actor: actor.actor, publicKeyPem: createPublicKey(actor.privateKeyPem).export({ type: "spki", format: "pem" }).toString() },
]);
const staffSigner = createInternalSigner(actor.actor, actor.privateKeyPem);

async function grpcError(call: Promise<unknown>): Promise<ServiceError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeDefined();
  return error as ServiceError;
}

describe("startServers", () => {
  it("answers Connect JSON over HTTPS HTTP/1.1 on the public port", async () => {
    const { servers } = await start();
    expect(servers.publicUrl).toMatch(/^https:\/\/localhost:\d+$/);
    const response = await postJson(servers.publicUrl, "/cls.pool.v1.PoolService/ListPools", "{}");
    expect(response.status).toBe(200);
    expect(response.httpVersion).toBe("1.1");
    expect(response.json).toEqual({ pools: [{ poolId: "pool_1", name: "2026 purchase" }] });
  });

  it("answers gRPC over HTTP/2 on the public port too", async () => {
    const { servers } = await start();
    const client = createClient(PoolService, createGrpcTransport({ baseUrl: servers.publicUrl, nodeOptions: { ca: tls.cert } }));
    const { pools } = await client.listPools({});
    expect(pools.map((pool) => pool.poolId)).toEqual(["pool_1"]);
  });

  it("maps errors on the public port and never sends an internal error's cause", async () => {
    const { servers, setPublicMode, lines } = await start();
    setPublicMode("bug");
    const response = await postJson(servers.publicUrl, "/cls.pool.v1.PoolService/ListPools", "{}");
    expect(response.status).toBe(500);
    expect(response.json).toEqual({ code: "internal", message: "internal error" });
    expect(lines.some((line) => line.msg === "internal error" && JSON.stringify(line).includes("secret detail of a bug"))).toBe(true);
  });

  it("does not serve the internal services on the public port", async () => {
    const { servers } = await start();
    const response = await postJson(servers.publicUrl, "/cls.pool.v1.PoolAdminService/CreateAccount", '{"name":"x"}');
    expect(response.status).toBe(404);
  });

  it("answers gRPC on the internal port, passing the actor and mapping errors to gRPC status codes", async () => {
    const { servers } = await start();
    expect(servers.internalUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const admin = createVendorClient(PoolAdminService, servers.internalUrl, actor);
    try {
      const { account } = await admin.createAccount({ name: "Acme" });
      expect(account).toMatchObject({ name: "Acme", accountId: "staff:alice@vendor.example" });

      expect((await grpcError(admin.createAccount({ name: "bad" }))).code).toBe(GrpcStatus.INVALID_ARGUMENT);
      const bug = await grpcError(admin.createAccount({ name: "boom" }));
      expect(bug.code).toBe(GrpcStatus.INTERNAL);
      expect(bug.details).toBe("internal error");
      expect((await grpcError(admin.getPool({ poolId: "pool_1" }))).code).toBe(GrpcStatus.UNIMPLEMENTED);
    } finally {
      admin.close();
    }

    // The same over connect-es's gRPC transport, which reads the messages exactly.
    const withCredential: Interceptor = (next) => async (req) => {
      req.header.set("authorization", `Bearer ${await staffSigner.token()}`);
      return next(req);
    };
    const connectAdmin = createClient(PoolAdminService, createGrpcTransport({ baseUrl: servers.internalUrl, interceptors: [withCredential] }));
    const invalid = await connectAdmin.createAccount({ name: "bad" }).catch((e: unknown) => ConnectError.from(e));
    expect(invalid).toBeInstanceOf(ConnectError);
    expect((invalid as ConnectError).code).toBe(Code.InvalidArgument);
    expect((invalid as ConnectError).rawMessage).toBe("name: is required");
    const internal = await connectAdmin.createAccount({ name: "boom" }).catch((e: unknown) => ConnectError.from(e));
    expect((internal as ConnectError).code).toBe(Code.Internal);
    expect((internal as ConnectError).rawMessage).toBe("internal error");
  });

  it("serves grpc.health.v1 on both ports, following the readiness checks", async () => {
    let up = true;
    const { servers } = await start({ readiness: [async () => up] });
    const health = createVendorClient(Health, servers.internalUrl, actor);
    try {
      expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
      expect((await health.check({ service: PoolAdminService.typeName })).status).toBe(Status.SERVING);
      // The internal port serves only the admin service.
      expect((await health.check({ service: PoolService.typeName })).status).toBe(Status.SERVICE_UNKNOWN);
      const publicCheck = await postJson(servers.publicUrl, "/grpc.health.v1.Health/Check", JSON.stringify({ service: PoolService.typeName }));
      expect(publicCheck.json).toEqual({ status: "SERVING" });

      up = false;
      expect((await health.check({ service: PoolAdminService.typeName })).status).toBe(Status.NOT_SERVING);
      expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
      const notReady = await postJson(servers.publicUrl, "/grpc.health.v1.Health/Check", JSON.stringify({ service: PoolService.typeName }));
      expect(notReady.json).toEqual({ status: "NOT_SERVING" });
    } finally {
      health.close();
    }
  });

  it("refuses a request larger than readMaxBytes", async () => {
    const { servers } = await start({ readMaxBytes: 64 });
    const response = await postJson(servers.publicUrl, "/cls.pool.v1.PoolService/ListPools", JSON.stringify({ padding: "x".repeat(1_000) }));
    expect(response.json?.code).toBe("resource_exhausted");
  });

  it("logs one line per RPC with the method and code, and never the peer address", async () => {
    const { servers, lines, setPublicMode } = await start();
    await postJson(servers.publicUrl, "/cls.pool.v1.PoolService/ListPools", "{}");
    setPublicMode("bug");
    await postJson(servers.publicUrl, "/cls.pool.v1.PoolService/ListPools", "{}");
    const rpcLines = lines.filter((line) => line.msg === "rpc");
    expect(rpcLines.map((line) => [line.rpc, line.code])).toEqual([
      ["cls.pool.v1.PoolService/ListPools", "ok"],
      ["cls.pool.v1.PoolService/ListPools", "Internal"],
    ]);
    for (const line of lines) expect(JSON.stringify(line)).not.toMatch(/127\.0\.0\.1|::1|::ffff/);
  });

  it("close() lets an in-flight gRPC call finish, then refuses new calls", async () => {
    const { servers, slow } = await start();
    const admin = createVendorClient(PoolAdminService, servers.internalUrl, actor);
    try {
      const inFlight = admin.createAccount({ name: "slow" });
      await slow.reached;
      const closing = servers.close(10_000);
      slow.open();
      const { account } = await inFlight;
      expect(account?.name).toBe("slow");
      await closing;
      const late = createVendorClient(PoolAdminService, servers.internalUrl, { ...actor, deadlineMs: 2_000 });
      try {
        const error = await grpcError(late.createAccount({ name: "late" }));
        expect([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED]).toContain(error.code);
      } finally {
        late.close();
      }
    } finally {
      admin.close();
    }
  });

  it("close() lets an in-flight HTTP/1.1 call finish, then refuses new connections", async () => {
    const { servers, slow, setPublicMode } = await start();
    setPublicMode("slow");
    const inFlight = postJson(servers.publicUrl, "/cls.pool.v1.PoolService/ListPools", "{}");
    await slow.reached;
    const closing = servers.close(10_000);
    slow.open();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(response.json.pools).toHaveLength(1);
    await closing;
    await expect(postJson(servers.publicUrl, "/cls.pool.v1.PoolService/ListPools", "{}")).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("close() ends calls still running after the grace period", async () => {
    const { servers, slow, setPublicMode } = await start();
    setPublicMode("slow");
    const inFlight = postJson(servers.publicUrl, "/cls.pool.v1.PoolService/ListPools", "{}").then(
      () => "answered",
      () => "cut off",
    );
    await slow.reached;
    await servers.close(50);
    expect(await inFlight).toBe("cut off");
  });
});

describe("loadOrCreateSelfSignedTls", () => {
  it("makes a localhost certificate once and loads the same one after, so the pin is stable", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cls-tls-test-"));
    try {
      const first = await loadOrCreateSelfSignedTls(dir);
      const again = await loadOrCreateSelfSignedTls(dir);
      expect(again).toEqual(first);
      expect(spkiPin(again.cert)).toBe(spkiPin(first.cert));
      expect(spkiPin(first.cert)).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      const cert = new X509Certificate(first.cert);
      expect(cert.checkHost("localhost")).toBe("localhost");
      expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
      expect(cert.ca).toBe(false);
      expect(statSync(join(dir, "tls.key")).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("makes a different key in another folder", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cls-tls-test-"));
    try {
      expect(spkiPin((await loadOrCreateSelfSignedTls(dir)).cert)).not.toBe(spkiPin(tls.cert));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

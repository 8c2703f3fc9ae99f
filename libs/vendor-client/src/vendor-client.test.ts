import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { ServiceError } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "@cls/errors";
import { AccountSchema, Health, PoolAdminService, PoolSchema } from "@cls/proto";
import { actorOf, errorInterceptor, internalAuthInterceptor } from "@cls/server";
import { createInternalVerifier } from "@cls/auth";
import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { createPublicKey } from "node:crypto";
import { createVendorClient, GrpcStatus } from "./index.js";

const ACTORS = ["staff:alice@vendor.example", "staff:bob@vendor.example", "staff:a@b"] as const;
const keys = new Map(ACTORS.map((actor) => [actor, generateEd25519PrivateKeyPem()]));
/** Client options for one of the actors the fake internal port trusts. */
const as = (actor: (typeof ACTORS)[number], extra: { deadlineMs?: number } = {}) => ({ actor, privateKeyPem: keys.get(actor)!, ...extra });
const verifier = createInternalVerifier(
  ACTORS.map((actor) => ({ actor, publicKeyPem: createPublicKey(keys.get(actor)!).export({ type: "spki", format: "pem" }).toString() })),
);

/** What the fake internal service saw of the last call. */
const seen: { actor?: string | null } = {};
let server: http2.Http2Server;
let address: string;
let releaseSlow!: () => void;
const slowReleased = new Promise<void>((resolve) => (releaseSlow = resolve));

beforeAll(async () => {
  // A cleartext HTTP/2 gRPC server, as the internal port of a CLS service is.
  const handler = connectNodeAdapter({
    interceptors: [errorInterceptor(pino({ level: "silent" })), internalAuthInterceptor(verifier)],
    routes: (router) =>
      router.service(PoolAdminService, {
        async createAccount(req, ctx) {
          seen.actor = actorOf(ctx);
          if (req.name === "") throw new InvalidArgumentError("name", "is required");
          if (req.name === "slow") await slowReleased;
          return { account: create(AccountSchema, { accountId: "acc_1", name: req.name, createdAt: timestampFromDate(new Date(0)) }) };
        },
        async getPool(req) {
          if (req.poolId === "pool_expired") throw new FailedPreconditionError("pool pool_expired expired at 2026-01-01T00:00:00.000Z; renew it");
          if (req.poolId !== "pool_1") throw new NotFoundError(`pool ${req.poolId}`);
          return { pool: create(PoolSchema, { poolId: "pool_1", version: 9_007_199_254_740_993n }) };
        },
      }),
  });
  server = http2.createServer({}, handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  releaseSlow();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function failure(call: Promise<unknown>): Promise<ServiceError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as ServiceError;
}

describe("createVendorClient", () => {
  it("calls unary methods over gRPC and returns typed responses", async () => {
    const client = createVendorClient(PoolAdminService, address, as("staff:alice@vendor.example"));
    try {
      const { account } = await client.createAccount({ name: "Acme Security" });
      expect(account).toMatchObject({ accountId: "acc_1", name: "Acme Security" });
      expect(account?.createdAt).toEqual(timestampFromDate(new Date(0)));
      const { pool } = await client.getPool({ poolId: "pool_1" });
      expect(pool?.version).toBe(9_007_199_254_740_993n);
    } finally {
      client.close();
    }
  });

  it("sends the actor with every call, for the audit trail", async () => {
    const client = createVendorClient(PoolAdminService, address, as("staff:bob@vendor.example"));
    try {
      await client.createAccount({ name: "x" });
      expect(seen.actor).toBe("staff:bob@vendor.example");
    } finally {
      client.close();
    }
  });

  it("accepts an address with or without the http:// scheme", async () => {
    const client = createVendorClient(PoolAdminService, address.replace("http://", ""), as("staff:a@b"));
    try {
      expect((await client.getPool({ poolId: "pool_1" })).pool?.poolId).toBe("pool_1");
    } finally {
      client.close();
    }
  });

  it("rejects with the gRPC status code of a refusal", async () => {
    const client = createVendorClient(PoolAdminService, address, as("staff:a@b"));
    try {
      expect((await failure(client.getPool({ poolId: "pool_2" }))).code).toBe(GrpcStatus.NOT_FOUND);
      expect((await failure(client.createAccount({ name: "" }))).code).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect((await failure(client.listLicenceTypes({}))).code).toBe(GrpcStatus.UNIMPLEMENTED);
    } finally {
      client.close();
    }
  });

  it("gives vendor staff the refusal's message exactly as CLS wrote it", async () => {
    const client = createVendorClient(PoolAdminService, address, as("staff:a@b"));
    try {
      const invalid = await failure(client.createAccount({ name: "" }));
      expect(invalid.details).toBe("name: is required");
      expect(invalid.message).toContain("name: is required");
      const expired = await failure(client.getPool({ poolId: "pool_expired" }));
      expect(expired.details).toBe("pool pool_expired expired at 2026-01-01T00:00:00.000Z; renew it");
    } finally {
      client.close();
    }
  });

  it("gives up with DEADLINE_EXCEEDED when the call outlives its deadline", async () => {
    const client = createVendorClient(PoolAdminService, address, as("staff:a@b", { deadlineMs: 100 }));
    try {
      expect((await failure(client.createAccount({ name: "slow" }))).code).toBe(GrpcStatus.DEADLINE_EXCEEDED);
    } finally {
      client.close();
    }
  });

  it("rejects with UNAVAILABLE when nothing listens at the address", async () => {
    const client = createVendorClient(PoolAdminService, "http://127.0.0.1:1", as("staff:a@b", { deadlineMs: 2_000 }));
    try {
      const error = await failure(client.getPool({ poolId: "pool_1" }));
      expect([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED]).toContain(error.code);
    } finally {
      client.close();
    }
  });

  it("offers only the unary methods of a service", () => {
    const health = createVendorClient(Health, address, as("staff:a@b"));
    try {
      expect(typeof health.check).toBe("function");
      expect("watch" in health).toBe(false);
    } finally {
      health.close();
    }
  });
});

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { LOCAL_STAFF_ACTOR } from "@cls/all-in-one";
import { EdgeVisClient, spkiPinOfPem } from "@cls/edgevis-client";
import { AllocationService, EncoderKind, NotificationService, PoolAdminService, PoolService, ServerIdentityAdminService, ServerIdentityService } from "@cls/proto";
import { createVendorClient } from "@cls/vendor-client";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { startProcess, type StartedProcess } from "../support/process.js";

/** POSTs Connect JSON over HTTP/1.1, as `curl -X POST -H 'content-type: application/json'` does. */
function postJson(url: string, body: unknown, ca: string): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { "content-type": "application/json" }, ca }, (res) => {
      let text = "";
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

/**
 * `npm start` with no database configured: the all-in-one process on embedded PGlite and
 * in-process locks, exactly as the README's quick start runs it.
 */
describe("npm start on embedded defaults", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "cls-embedded-"));
  let cls: StartedProcess | undefined;
  const env = { CLS_DATA_DIR: dataDir, PUBLIC_PORT: "0", INTERNAL_PORT: "0", METRICS_PORT: "0", DATABASE_URL: "", REDIS_URL: "", LOG_LEVEL: "warn" };

  const start = async () => {
    // What `npm start` runs, without npm in between, so SIGTERM reaches CLS itself.
    cls = startProcess(process.execPath, ["--import", "tsx", "services/all-in-one/src/main.ts"], env);
    const [, publicUrl] = await cls.waitFor(/public API[^:]*: (https:\/\/\S+)/);
    const [, internal] = await cls.waitFor(/internal gRPC[^:]*:\s+(\S+)/);
    return { publicUrl: publicUrl!, internal: internal!, cert: readFileSync(join(dataDir, "tls", "tls.crt"), "utf8") };
  };

  afterAll(async () => {
    await cls?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("serves health over Connect JSON, runs the flow, and keeps its data across a restart", async () => {
    const first = await start();
    expect(cls!.output()).toContain("storage: embedded PGlite");

    // Every public service answers grpc.health.v1.Health/Check over plain Connect JSON.
    for (const service of [PoolService, AllocationService, ServerIdentityService, NotificationService]) {
      const { status, json } = await postJson(`${first.publicUrl}/grpc.health.v1.Health/Check`, { service: service.typeName }, first.cert);
      expect({ service: service.typeName, status, json }).toEqual({ service: service.typeName, status: 200, json: { status: "SERVING" } });
    }

    // The embedded default trusts one local staff key, made on first start in the data folder.
    const staff = { actor: LOCAL_STAFF_ACTOR, privateKeyPem: readFileSync(join(dataDir, "keys", "staff.pem"), "utf8") };
    const pools = createVendorClient(PoolAdminService, first.internal, staff);
    const identity = createVendorClient(ServerIdentityAdminService, first.internal, staff);
    const { account } = await pools.createAccount({ name: "Embedded Co" });
    await pools.createLicenceType({ licenceType: "edgevis-camera", description: "" });
    await pools.putEncoderModel({ model: { model: "minicam", licenceType: "edgevis-camera", kind: EncoderKind.HARDWARE, minV9Version: "9.2" } });
    const { pool } = await pools.createPool({
      accountId: account!.accountId,
      name: "Embedded pool",
      expiresAt: timestampFromDate(new Date(Date.now() + 30 * 24 * 3600 * 1000)),
      counts: { "edgevis-camera": 1 },
    });
    const { enrollmentCode } = await identity.createEnrollmentCode({ accountId: account!.accountId, poolId: pool!.poolId });
    const leaseKey = await createClient(AllocationService, createConnectTransport({ baseUrl: first.publicUrl, httpVersion: "2", nodeOptions: { ca: first.cert } })).getLeaseKey({});
    const server = new EdgeVisClient({
      baseUrl: first.publicUrl,
      ca: first.cert,
      tlsPins: [spkiPinOfPem(first.cert)],
      leaseKeys: [{ keyId: leaseKey.keyId, publicKey: leaseKey.publicKey }],
    });
    const enrolled = await server.enroll(enrollmentCode, "embedded site");
    await server.registerEncoder("enc-1", "MiniCam", "9.3");
    // The only licence: its grant crosses 80% and 100%, which the outbox relays in-process.
    const { lease } = await server.addCamera("enc-1", "cam-1");
    expect(lease.lease.poolId).toBe(pool!.poolId);
    pools.close();
    identity.close();

    expect(await cls!.stop()).toBe(0);

    // Restarted on the same folder: the account, its pool and the held licence are still there.
    const second = await start();
    const poolsAgain = createVendorClient(PoolAdminService, second.internal, staff);
    const { pools: listed } = await poolsAgain.listAccountPools({ accountId: account!.accountId });
    poolsAgain.close();
    expect(listed.map((p) => p.poolId)).toEqual([pool!.poolId]);
    const again = new EdgeVisClient({
      baseUrl: second.publicUrl,
      ca: second.cert,
      tlsPins: [spkiPinOfPem(second.cert)],
      leaseKeys: [{ keyId: leaseKey.keyId, publicKey: leaseKey.publicKey }],
      identity: enrolled,
    });
    const { pools: seen } = await again.pools.listPools({});
    expect(seen[0]!.entitlements[0]).toMatchObject({ total: 1, used: 1, free: 0 });
  }, 120_000);
});

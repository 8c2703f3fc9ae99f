/**
 * Walks the core licensing flow against a running `npm start` (or an embedded CLS of its own
 * when none answers) and says what happened in plain words.
 */
import { createPublicKey } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { LOCAL_STAFF_ACTOR, migrateAll, startMesh, type RunningMesh } from "@cls/all-in-one";
import { createInProcessRevocationList } from "@cls/auth";
import { systemClock } from "@cls/clock";
import { openDatabase } from "@cls/db";
import { EdgeVisClient, spkiPinOfPem } from "@cls/edgevis-client";
import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { createInProcessLockService } from "@cls/lock";
import { AllocationService, EncoderKind, PoolAdminService, PoolExhaustedDetailSchema, ServerIdentityAdminService } from "@cls/proto";
import { createLogger, loadOrCreateSelfSignedTls } from "@cls/server";
import { createVendorClient } from "@cls/vendor-client";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

const say = (line: string) => process.stdout.write(`${line}\n`);
const dataDir = process.env.CLS_DATA_DIR ?? ".cls-data";
const publicUrl = process.env.CLS_PUBLIC_URL ?? "https://localhost:8443";
const internalAddress = process.env.CLS_INTERNAL_ADDRESS ?? "127.0.0.1:9090";

interface Target {
  publicUrl: string;
  internalAddress: string;
  cert: string;
  /** A staff key the target trusts on its internal port. */
  staffKeyPem: string;
  stop(): Promise<void>;
}

async function runningCls(): Promise<Target | undefined> {
  const certPath = join(dataDir, "tls", "tls.crt");
  if (!existsSync(certPath)) return undefined;
  const cert = readFileSync(certPath, "utf8");
  const probe = createClient(AllocationService, createConnectTransport({ baseUrl: publicUrl, httpVersion: "2", nodeOptions: { ca: cert } }));
  try {
    await probe.getLeaseKey({}, { timeoutMs: 1_500 });
    const staffKeyPath = join(dataDir, "keys", "staff.pem");
    if (!existsSync(staffKeyPath)) return undefined;
    return { publicUrl, internalAddress, cert, staffKeyPem: readFileSync(staffKeyPath, "utf8"), stop: async () => {} };
  } catch {
    return undefined;
  }
}

async function embeddedCls(): Promise<Target> {
  const database = await openDatabase({});
  await migrateAll(database);
  const tls = await loadOrCreateSelfSignedTls(join(dataDir, "demo-tls"));
  const staffKeyPem = generateEd25519PrivateKeyPem();
  const mesh: RunningMesh = await startMesh({
    database,
    locks: createInProcessLockService(),
    revocations: createInProcessRevocationList(),
    readiness: [],
    clock: systemClock(),
    logger: createLogger("cls-demo", "silent"),
    tls,
    leaseSigningKeyPem: generateEd25519PrivateKeyPem(),
    tokenSigningKeyPem: generateEd25519PrivateKeyPem(),
    trustedCallers: [{ actor: LOCAL_STAFF_ACTOR, publicKeyPem: createPublicKey(staffKeyPem).export({ type: "spki", format: "pem" }).toString() }],
    layout: "single-port",
    publicPort: 0,
    internalPort: 0,
    host: "127.0.0.1",
  });
  return {
    publicUrl: mesh.publicUrl,
    internalAddress: mesh.internalUrl,
    cert: tls.cert,
    staffKeyPem,
    async stop() {
      await mesh.close();
      await database.close();
    },
  };
}

const found = await runningCls();
const target = found ?? (await embeddedCls());
say(found ? `Using the CLS running at ${target.publicUrl}.` : "No CLS answered at " + publicUrl + ", so the demo started an embedded one.");

const staff = { actor: LOCAL_STAFF_ACTOR, privateKeyPem: target.staffKeyPem };
const pools = createVendorClient(PoolAdminService, target.internalAddress, staff);
const identity = createVendorClient(ServerIdentityAdminService, target.internalAddress, staff);
const suffix = Date.now().toString(36);

try {
  say("\n1. Vendor staff, over gRPC, set up a customer:");
  const { account } = await pools.createAccount({ name: `Demo Customer ${suffix}` });
  say(`   created account ${account!.accountId}`);
  const licenceType = `demo-camera-${suffix}`;
  await pools.createLicenceType({ licenceType, description: "One camera on a v9 encoder (demo)" });
  const model = `demo-ip200-${suffix}`;
  await pools.putEncoderModel({ model: { model, licenceType, kind: EncoderKind.HARDWARE, minV9Version: "9.2" } });
  say(`   added licence type ${licenceType} and encoder model ${model} (v9 licensing from 9.2)`);
  const { pool } = await pools.createPool({
    accountId: account!.accountId,
    name: "Demo purchase",
    expiresAt: timestampFromDate(new Date(Date.now() + 365 * 24 * 3600 * 1000)),
    counts: { [licenceType]: 2 },
  });
  say(`   created pool ${pool!.poolId} holding 2 licences, expiring in a year`);

  say("\n2. An EdgeVis Server enrolls with a one-time code and its own Ed25519 key:");
  const { enrollmentCode } = await identity.createEnrollmentCode({ accountId: account!.accountId, poolId: pool!.poolId });
  say(`   enrollment code ${enrollmentCode}`);
  const leaseKey = await createClient(
    AllocationService,
    createConnectTransport({ baseUrl: target.publicUrl, httpVersion: "2", nodeOptions: { ca: target.cert } }),
  ).getLeaseKey({});
  const server = new EdgeVisClient({
    baseUrl: target.publicUrl,
    ca: target.cert,
    tlsPins: [spkiPinOfPem(target.cert)],
    leaseKeys: [{ keyId: leaseKey.keyId, publicKey: leaseKey.publicKey }],
  });
  const enrolled = await server.enroll(enrollmentCode, "Demo head office");
  say(`   enrolled as ${enrolled.serverId}, drawing from pool ${enrolled.poolId}`);
  const reuse = await new EdgeVisClient({ baseUrl: target.publicUrl, ca: target.cert, tlsPins: [spkiPinOfPem(target.cert)], leaseKeys: [] })
    .enroll(enrollmentCode, "Someone else")
    .catch((error: unknown) => ConnectError.from(error));
  say(`   using the same code again is refused: ${reuse instanceof ConnectError ? Code[reuse.code] : "accepted?!"}`);

  say("\n3. The server registers a v9.2 encoder and adds cameras; each gets a signed lease:");
  await server.registerEncoder("encoder-1", model, "9.2.1");
  for (const camera of ["camera-1", "camera-2"]) {
    const { lease } = await server.addCamera("encoder-1", camera);
    say(`   ${camera}: lease #${lease.lease.serial} verified against key ${lease.signed.keyId}, expires ${lease.lease.expiresAt ? new Date(Number(lease.lease.expiresAt.seconds) * 1000).toISOString() : "never"}`);
  }

  say("\n4. The pool is full, so the next camera is refused:");
  const refused = await server.addCamera("encoder-1", "camera-3").catch((error: unknown) => ConnectError.from(error));
  if (refused instanceof ConnectError) {
    const [detail] = refused.findDetails(PoolExhaustedDetailSchema);
    say(`   ${Code[refused.code]}: ${detail?.used} of ${detail?.total} in use`);
  }
  await server.removeCamera("encoder-1", "camera-1");
  say("   camera-1 removed: its licence is free again");
  await server.addCamera("encoder-1", "camera-3");
  say("   camera-3 now gets a licence");

  say("\n5. Adding the same camera twice takes one licence, not two:");
  const first = await server.addCamera("encoder-1", "camera-3");
  const { pools: listed } = await server.pools.listPools({});
  const entitlement = listed.find((p) => p.poolId === pool!.poolId)?.entitlements[0];
  say(`   same allocation ${first.allocation!.allocationId}; pool shows ${entitlement?.used} used of ${entitlement?.total}`);

  say("\n6. The refusal reaches the customer's notifications:");
  for (let attempt = 0; attempt < 20; attempt++) {
    const { notifications } = await server.notifications.listNotifications({ type: "acquisition.refused" });
    if (notifications.length > 0) {
      say(`   ${notifications[0]!.type} at ${new Date(Number(notifications[0]!.occurredAt!.seconds) * 1000).toISOString()}: ${notifications[0]!.dataJson}`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  say("\nDone.");
} finally {
  pools.close();
  identity.close();
  await target.stop();
}

import { generateKeyPairSync, createPrivateKey, createPublicKey, sign } from "node:crypto";
import { fromBinary, type DescService } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawPublicKey } from "@cls/lease";
import { AllocationState, LeaseSchema } from "@cls/proto";
import { startTestMesh, type TestMesh } from "../support/mesh.js";
import { query } from "./support/database.js";
import { drainOutboxes } from "./support/outbox.js";
import { callRpc, codeName, fieldPaths, printable, publicClients, publicRpcNames, publicServicesOf, valuesAt } from "./support/public-api.js";
import { MODEL, privateValuesOf, seedTenant, type Tenant } from "./support/tenant.js";

/**
 * SPEC L11 ("What a server may touch"), L14 and issue 4 (Tenancy): every public RPC, called as
 * account A's EdgeVis Server and as A's customer (API key), with every kind of id of account B
 * the request can carry, is refused with permission_denied or not_found, or succeeds with
 * nothing of B in it; and B's state does not move.
 */

type CallerKind = "server" | "customer";

interface Case {
  /** Which of A's callers make this call; both by default. */
  callers?: CallerKind[];
  label: string;
  request: Record<string, unknown>;
  /** Refusal codes this RPC may also answer with (beyond permission_denied and not_found). */
  alsoAllowed?: string[];
  /** Fields (proto paths) that carry a credential derived from B, which value matching cannot see. */
  carriesB?: string[];
  /**
   * What must happen besides "nothing of B": `refused` (it acts on B, so it must not succeed),
   * or `empty` (a list filtered by B's ids lists nothing). Unset: either, without B's data.
   */
  outcome?: "refused" | "empty";
}

type CaseBuilder = (a: Tenant, b: Tenant, helpers: Helpers) => Promise<Case[]> | Case[];

interface Helpers {
  /** A fresh challenge CLS issued for B's server (CreateChallenge is anonymous). */
  challengeForB(): Promise<Uint8Array>;
}

const REFUSED = ["permission_denied", "not_found"];
/** The anonymous credential checks answer a wrong credential as such, or rate-limit it. */
const CREDENTIAL_REFUSALS = ["unauthenticated", "resource_exhausted"];

function newKeyPair() {
  const { privateKey } = generateKeyPairSync("ed25519");
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) };
}

/**
 * The matrix. Keys are every public RPC (`pkg.Service/Method`); a test fails when the mesh
 * serves an RPC that is missing here, so a new RPC cannot slip past.
 */
const CASES: Record<string, CaseBuilder> = {
  "cls.pool.v1.PoolService/ListPools": () => [{ label: "own pools only", request: {} }],

  "cls.allocation.v1.AllocationService/AcquireLicence": (_a, b) => [
    { label: "B's encoder and camera", outcome: "refused", request: { encoderId: b.encoderId, cameraId: b.cameraIds[0] } },
    { label: "B's legacy encoder, a new camera", outcome: "refused", request: { encoderId: b.legacyEncoderId, cameraId: "new-camera" } },
  ],
  "cls.allocation.v1.AllocationService/ReleaseLicence": (a, b) => [
    { label: "B's encoder and camera, on the caller's own server", callers: ["server"], request: { encoderId: b.encoderId, cameraId: b.cameraIds[0] } },
    { label: "B's encoder and camera, on A's server", callers: ["customer"], request: { serverId: a.serverId, encoderId: b.encoderId, cameraId: b.cameraIds[0] } },
    { label: "B's server, encoder and camera", outcome: "refused", request: { serverId: b.serverId, encoderId: b.encoderId, cameraId: b.cameraIds[0] } },
    { label: "B's server with A's encoder and camera ids", outcome: "refused", request: { serverId: b.serverId, encoderId: a.encoderId, cameraId: a.cameraIds[1] } },
  ],
  "cls.allocation.v1.AllocationService/CheckEncoder": (_a, b) => [
    { label: "B's v9 encoder", outcome: "refused", request: { encoderId: b.encoderId, firmwareVersion: "9.2.1" } },
    { label: "B's legacy encoder", outcome: "refused", request: { encoderId: b.legacyEncoderId, firmwareVersion: "8.4.0" } },
  ],
  "cls.allocation.v1.AllocationService/CheckEncoders": (a, b) => [
    {
      label: "B's encoders in a batch",
      request: {
        encoders: [
          { encoderId: b.encoderId, firmwareVersion: "9.2.1" },
          { encoderId: b.legacyEncoderId, firmwareVersion: "8.4.0" },
        ],
      },
    },
    {
      label: "B's encoder beside A's own",
      request: {
        encoders: [
          { encoderId: a.encoderId, firmwareVersion: "9.2.1" },
          { encoderId: b.encoderId, firmwareVersion: "9.2.1" },
        ],
      },
    },
  ],
  "cls.allocation.v1.AllocationService/ListAllocations": (_a, b) => [
    { label: "filtered by B's server", outcome: "empty", request: { serverId: b.serverId, includeEnded: true } },
    { label: "filtered by B's encoder", outcome: "empty", request: { encoderId: b.encoderId, includeEnded: true } },
    { label: "filtered by B's camera", outcome: "empty", request: { cameraId: b.cameraIds[0], includeEnded: true } },
    { label: "filtered by B's server, encoder and camera", outcome: "empty", request: { serverId: b.serverId, encoderId: b.encoderId, cameraId: b.cameraIds[1] } },
  ],
  "cls.allocation.v1.AllocationService/SwitchPool": (a, b) => [
    { label: "the caller's server to B's pool", outcome: "refused", callers: ["server"], request: { poolId: b.poolId } },
    { label: "A's server to B's pool", outcome: "refused", request: { serverId: a.serverId, poolId: b.otherPoolId } },
    { label: "B's server to A's pool", outcome: "refused", request: { serverId: b.serverId, poolId: a.otherPoolId } },
    { label: "B's server to B's other pool", outcome: "refused", request: { serverId: b.serverId, poolId: b.otherPoolId } },
  ],
  "cls.allocation.v1.AllocationService/GetLeaseKey": () => [{ label: "the published key, nothing else", request: {} }],
  // Last among the allocation RPCs: it creates A's own encoder under the same external id as B's
  // (encoder ids are each server's own names), which must not touch B's.
  "cls.allocation.v1.AllocationService/RegisterEncoder": (_a, b) => [
    { label: "B's encoder id, as the caller's own encoder", request: { encoderId: b.encoderId, model: MODEL, firmwareVersion: "9.2.1" } },
  ],

  "cls.server_identity.v1.ServerIdentityService/Enroll": (_a, b) => [
    {
      label: "B's used enrollment code",
      outcome: "refused",
      request: { enrollmentCode: b.usedEnrollmentCode, publicKey: newKeyPair().publicKey, serverName: "intruder" },
      alsoAllowed: ["already_exists", ...CREDENTIAL_REFUSALS],
    },
  ],
  "cls.server_identity.v1.ServerIdentityService/CreateChallenge": (_a, b) => [
    // Anonymous by design (a server asks before it has a token): it may succeed, with nothing of B.
    { label: "for B's server", request: { serverId: b.serverId }, alsoAllowed: ["unauthenticated"] },
  ],
  "cls.server_identity.v1.ServerIdentityService/Authenticate": async (a, b, helpers) => {
    const aKey = createPrivateKey(a.server.identity!.privateKeyPem);
    const cases: Case[] = [];
    for (const caller of ["server", "customer"] as const) {
      const challenge = await helpers.challengeForB();
      cases.push({
        label: "B's server id and challenge, signed with A's key",
        outcome: "refused",
        callers: [caller],
        request: { serverId: b.serverId, challenge, signature: sign(null, challenge, aKey) },
        alsoAllowed: CREDENTIAL_REFUSALS,
        carriesB: ["challenge"],
      });
    }
    return cases;
  },
  "cls.server_identity.v1.ServerIdentityService/ExchangeApiKey": (a, b) => [
    {
      label: "B's key id with A's secret",
      outcome: "refused",
      request: { apiKey: `cls_${b.apiKeyId}_${a.apiKey.slice(`cls_${a.apiKeyId}_`.length)}` },
      alsoAllowed: CREDENTIAL_REFUSALS,
    },
  ],
  "cls.server_identity.v1.ServerIdentityService/RotateKey": async (_a, _b, helpers) => {
    const cases: Case[] = [];
    for (const caller of ["server", "customer"] as const) {
      const challenge = await helpers.challengeForB();
      const next = newKeyPair();
      cases.push({
        label: "a challenge of B's server, signed with a new key",
        outcome: "refused",
        callers: [caller],
        request: { newPublicKey: next.publicKey, challenge, signature: sign(null, challenge, next.privateKey) },
        alsoAllowed: CREDENTIAL_REFUSALS,
        carriesB: ["challenge"],
      });
    }
    return cases;
  },

  "cls.server_identity.v1.AccountService/NewEnrollmentCode": (_a, b) => [
    { label: "for B's pool", outcome: "refused", request: { poolId: b.poolId } },
    { label: "for B's other pool", outcome: "refused", request: { poolId: b.otherPoolId } },
  ],
  "cls.server_identity.v1.AccountService/ListAccountServers": () => [{ label: "own servers only", request: {} }],
  "cls.server_identity.v1.AccountService/RevokeAccountServer": (_a, b) => [{ label: "B's server", outcome: "refused", request: { serverId: b.serverId } }],

  "cls.notification.v1.NotificationService/CreateWebhook": (a) => [
    // Carries no id; it makes A's own webhook, and must answer with nothing of B's.
    { label: "A's own webhook", request: { url: `https://hooks.${a.label}-second.invalid/cls`, eventTypes: ["server.enrolled"] } },
  ],
  "cls.notification.v1.NotificationService/ListWebhooks": () => [{ label: "own webhooks only", request: {} }],
  "cls.notification.v1.NotificationService/DeleteWebhook": (_a, b) => [{ label: "B's webhook", outcome: "refused", request: { webhookId: b.webhookId } }],
  "cls.notification.v1.NotificationService/ListDeadLetters": () => [{ label: "own dead letters only", request: {} }],
  "cls.notification.v1.NotificationService/ListNotifications": () => [
    { label: "own notifications only", request: {} },
    { label: "own notifications of B's kinds of events", request: { type: "server.enrolled" } },
  ],
};

/** Fields of a request that name something: ids, and the credentials that stand for one. */
function isIdentifyingField(path: string): boolean {
  const leaf = path.split(".").at(-1)!.replace("[]", "");
  return leaf.endsWith("_id") || ["api_key", "enrollment_code", "challenge"].includes(leaf);
}

/** Every string a request carries, so that B's values the caller sent itself can be told from leaks. */
function stringsIn(value: unknown, out = new Set<string>()): Set<string> {
  if (typeof value === "string") out.add(value);
  else if (Array.isArray(value)) value.forEach((v) => stringsIn(v, out));
  else if (value && typeof value === "object" && !(value instanceof Uint8Array)) Object.values(value).forEach((v) => stringsIn(v, out));
  return out;
}

/** Signed leases decoded in place, so the lease's own fields are checked too. */
function withLeasesDecoded(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withLeasesDecoded);
  if (value && typeof value === "object" && !(value instanceof Uint8Array)) {
    const record = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(record)) out[key] = withLeasesDecoded(v);
    if (record.$typeName === "cls.allocation.v1.SignedLease" && record.lease instanceof Uint8Array) out.decodedLease = fromBinary(LeaseSchema, record.lease);
    return out;
  }
  return value;
}

/** Every value of a field with this (camelCase) name, anywhere in a response. */
function fieldValues(value: unknown, name: string, out: unknown[] = []): unknown[] {
  if (Array.isArray(value)) value.forEach((v) => fieldValues(v, name, out));
  else if (value && typeof value === "object" && !(value instanceof Uint8Array)) {
    for (const [key, v] of Object.entries(value)) {
      if (key === name) out.push(v);
      fieldValues(v, name, out);
    }
  }
  return out;
}

/** Everything of B that is in the database, to show B's state is untouched by A's calls. */
async function stateOf(t: TestMesh, b: Tenant) {
  const url = t.database.url;
  const byAccount = (table: string) => query(url, `select * from ${table} where account_id = $1 order by 1`, [b.accountId]);
  return {
    allocations: await byAccount("allocation.allocations"),
    allocationServers: await byAccount("allocation.servers"),
    encoders: await query(url, "select * from allocation.encoders where server_id = $1 order by encoder_id", [b.serverId]),
    usage: await query(url, "select * from allocation.pool_usage where pool_id = any($1::text[]) order by pool_id, licence_type", [[b.poolId, b.otherPoolId]]),
    pools: await byAccount("pool.pools"),
    entitlements: await query(url, "select * from pool.pool_entitlements where pool_id = any($1::text[]) order by 1, 2", [[b.poolId, b.otherPoolId]]),
    identityServers: await byAccount("server_identity.servers"),
    apiKeys: await byAccount("server_identity.api_keys"),
    enrollmentCodes: await byAccount("server_identity.enrollment_codes"),
    events: await byAccount("notification.events"),
    webhooks: await query(url, "select * from notification.webhooks where account_id = $1 order by 1", [b.accountId]),
    // What B itself sees through the API.
    listedPools: (await b.asCustomer.pools.listPools({})).pools,
    listedAllocations: (await b.asCustomer.allocation.listAllocations({ includeEnded: true })).allocations,
    listedServers: (await b.asCustomer.account.listAccountServers({})).servers,
    listedWebhooks: (await b.asCustomer.notifications.listWebhooks({})).webhooks,
  };
}

describe("tenancy: account A can touch nothing of account B (SPEC L11, L14)", () => {
  let t: TestMesh;
  let a: Tenant;
  let b: Tenant;
  let services: DescService[];
  let bBefore: Awaited<ReturnType<typeof stateOf>>;

  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
    a = await seedTenant(t, "alpha", { webhook: true });
    b = await seedTenant(t, "bravo", { webhook: true });
    // Every allocation B holds, the legacy licence of its v8 encoder included, is B's data.
    const rows = await query<{ allocation_id: string }>(t.database.url, "select allocation_id from allocation.allocations where account_id = $1", [b.accountId]);
    b.allocationIds = rows.map((r) => r.allocation_id);
    expect(b.allocationIds.length).toBe(b.cameraIds.length + 1);
    await drainOutboxes(t);
    services = publicServicesOf(t.mesh.modules);
    bBefore = await stateOf(t, b);
  });
  afterAll(async () => {
    await t?.close();
  });

  it("has a case for every public RPC the mesh serves, and for every id each request can carry", async () => {
    const served = publicRpcNames(services);
    // The five public services of the API, at least; more are picked up by themselves.
    for (const name of ["PoolService", "AllocationService", "ServerIdentityService", "AccountService", "NotificationService"]) {
      expect(services.map((s) => s.name)).toContain(name);
    }
    expect(served.filter((rpc) => !(rpc in CASES)), "public RPCs without a tenancy case").toEqual([]);
    expect(Object.keys(CASES).filter((rpc) => !served.includes(rpc)), "cases for RPCs the mesh does not serve").toEqual([]);

    const bValues = new Set(Object.values(privateValuesOf(b)));
    bValues.add(b.usedEnrollmentCode);
    const helpers: Helpers = { challengeForB: async () => new Uint8Array(32) };
    const uncovered: string[] = [];
    for (const service of services) {
      for (const method of service.methods) {
        const cases = await CASES[`${service.typeName}/${method.name}`]!(a, b, helpers);
        for (const { path } of fieldPaths(method.input).filter((f) => isIdentifyingField(f.path))) {
          const covered = cases.some(
            (c) => c.carriesB?.includes(path) || valuesAt(c.request, path).some((v) => typeof v === "string" && [...bValues].some((bv) => v.includes(bv))),
          );
          if (!covered) uncovered.push(`${service.typeName}/${method.name} ${path}`);
        }
      }
    }
    expect(uncovered, "request fields naming something that no case fills with B's").toEqual([]);
  });

  it("refuses A's server and A's customer every id of B, or answers without any of B's data", async () => {
    const forbidden = privateValuesOf(b);
    const externalIds = new Set([b.encoderId, b.legacyEncoderId, ...b.cameraIds]);
    const anonymous = publicClients(t);
    const helpers: Helpers = {
      async challengeForB() {
        return (await anonymous.identity.createChallenge({ serverId: b.serverId })).challenge;
      },
    };
    const problems: string[] = [];
    let calls = 0;

    // In the matrix's order (RegisterEncoder after the calls it would otherwise give an encoder to).
    const served = new Map<string, { service: DescService; method: DescService["methods"][number] }>(
      services.flatMap((service) => service.methods.map((method) => [`${service.typeName}/${method.name}`, { service, method }] as const)),
    );
    for (const [rpc, build] of Object.entries(CASES)) {
      const { service, method } = served.get(rpc)!;
      for (const c of await build(a, b, helpers)) {
        for (const caller of c.callers ?? (["server", "customer"] as const)) {
          const where = `${rpc} as A's ${caller} (${c.label})`;
          const sent = stringsIn(c.request);
          const transport = (caller === "server" ? a.asServer : a.asCustomer).transport;
          calls++;
          let answer: string;
          let echoAllowed: (value: string) => boolean;
          try {
            const { response, headers, trailers } = await callRpc(transport, service, method.name, c.request);
            const decoded = withLeasesDecoded(response);
            answer = printable({ response: decoded, headers, trailers });
            // A success may repeat the encoder and camera names the caller chose itself (they
            // are its own server's names too), never anything else of B's.
            echoAllowed = (value) => externalIds.has(value) && sent.has(value);
            if (c.outcome === "refused") problems.push(`${where}: succeeded, but it acts on B's resources: ${answer.slice(0, 300)}`);
            if (c.outcome === "empty") {
              const lists = Object.values(response as object).filter(Array.isArray);
              if (lists.length === 0 || lists.some((list) => list.length > 0)) problems.push(`${where}: listed something: ${answer.slice(0, 300)}`);
            }
            for (const accountId of fieldValues(decoded, "accountId")) if (accountId !== a.accountId) problems.push(`${where}: answered with account ${String(accountId)}`);
            for (const serverId of fieldValues(decoded, "serverId")) if (serverId !== a.serverId && serverId !== "") problems.push(`${where}: answered with server ${String(serverId)}`);
            for (const poolId of fieldValues(decoded, "poolId")) if (![a.poolId, a.otherPoolId, ""].includes(String(poolId))) problems.push(`${where}: answered with pool ${String(poolId)}`);
          } catch (error) {
            const refusal = ConnectError.from(error);
            const code = codeName(refusal.code);
            if (![...REFUSED, ...(c.alsoAllowed ?? [])].includes(code)) problems.push(`${where}: refused with ${code} (${refusal.rawMessage})`);
            answer = printable(refusal);
            // A refusal may repeat what the caller sent (e.g. "server srv_… not found").
            echoAllowed = (value) => sent.has(value);
          }
          for (const [field, value] of Object.entries(forbidden)) {
            if (answer.includes(value) && !echoAllowed(value)) problems.push(`${where}: B's ${field} (${value}) is in the answer: ${answer.slice(0, 400)}`);
          }
        }
      }
    }
    expect(calls).toBeGreaterThanOrEqual(40);
    expect(problems).toEqual([]);
  });

  it("leaves B's pools, usage, allocations, encoders, servers, keys and events exactly as they were", async () => {
    await drainOutboxes(t);
    const after = await stateOf(t, b);
    expect(after).toEqual(bBefore);
    expect(after.listedPools.find((p) => p.poolId === b.poolId)!.entitlements[0]).toMatchObject({ total: 5, used: b.cameraIds.length });
    expect(after.listedAllocations.filter((x) => x.state === AllocationState.ACTIVE).map((x) => x.allocationId).sort()).toEqual([...b.allocationIds].sort());
    // B's server still works: nothing A did revoked or rotated it.
    await expect(b.asServer.pools.listPools({})).resolves.toBeDefined();
  });
});

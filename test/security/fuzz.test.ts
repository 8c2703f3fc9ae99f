import { randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as proto from "@cls/proto";
import { ScalarType, type DescService } from "@bufbuild/protobuf";
import { createTokenIssuer } from "@cls/auth";
import { EdgeVisClient, spkiPinOfPem } from "@cls/edgevis-client";
import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { startTestMesh, type TestMesh } from "../support/mesh.js";
import { query, snapshotTables, type TableState } from "./support/database.js";
import { encode, Random, rpcsOf, sampleMessage, wrongTypedValues, type Rpc } from "./support/fuzz.js";
import { drainOutboxes } from "./support/outbox.js";
import { anonymousRpcNames, publicClients, publicServicesOf } from "./support/public-api.js";
import { mapConcurrent, RawHttp2Client, type RawRequest, type RawResponse } from "./support/raw-http2.js";
import { seedTenant, type Tenant } from "./support/tenant.js";

/**
 * Issue 4 (Hostile input) and the SPEC's error table: thousands of malformed, truncated,
 * oversized, wrongly typed and unauthenticated requests at every public RPC, in both Connect
 * unary encodings, as raw HTTP/2 over TLS at the services' public ports (where the ingress routes
 * them; going straight there keeps the test ingress's own behaviour out of the results). Every
 * answer is a proper Connect error with a SPEC code (never `internal`), every process stays up,
 * and nothing is written to the database. FUZZ_SEED repeats a run; FUZZ_DEBUG prints timings.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_c15);
const READ_MAX_BYTES = 4 * 1024 * 1024;
/** Codes the SPEC's error table allows for bad input and bad credentials. */
const SPEC_CODES = ["invalid_argument", "unauthenticated", "permission_denied", "not_found", "resource_exhausted", "failed_precondition", "unimplemented"];
/** Public RPCs that only read: a decodable request with a valid token may succeed there. */
const READ_ONLY = new Set([
  "cls.pool.v1.PoolService/ListPools",
  "cls.allocation.v1.AllocationService/ListAllocations",
  "cls.allocation.v1.AllocationService/GetLeaseKey",
  "cls.notification.v1.NotificationService/ListNotifications",
  "cls.server_identity.v1.AccountService/ListAccountServers",
  "cls.notification.v1.NotificationService/ListWebhooks",
  "cls.notification.v1.NotificationService/ListDeadLetters",
]);
/** The public port each package is served on (the ingress's routes). */
const ROUTES: Record<string, "pool" | "allocation" | "server-identity" | "notification"> = {
  "/cls.pool.v1.": "pool",
  "/cls.allocation.v1.": "allocation",
  "/cls.server_identity.v1.": "server-identity",
  "/cls.notification.v1.": "notification",
};

/** Raw HTTP/2 clients of every service's public port; a path of no service goes to each in turn. */
class PublicRouter {
  readonly #clients: Map<string, RawHttp2Client>;
  #next = 0;
  constructor(t: TestMesh) {
    this.#clients = new Map(Object.entries(t.mesh.urls).map(([name, urls]) => [name, new RawHttp2Client(urls.publicUrl, t.tls.cert)]));
  }
  request(request: RawRequest): Promise<RawResponse> {
    const prefix = Object.keys(ROUTES).find((p) => request.path.startsWith(p));
    const clients = [...this.#clients.values()];
    const client = prefix ? this.#clients.get(ROUTES[prefix]!)! : clients[this.#next++ % clients.length]!;
    return client.request(request);
  }
  close(): void {
    for (const client of this.#clients.values()) client.close();
  }
}

/** Bodies one byte over the limit, and gzip bombs that inflate to four times it; built once. */
const OVERSIZED = { proto: randomBytes(READ_MAX_BYTES + 1), json: `{"x":"${"a".repeat(READ_MAX_BYTES)}"}` };
const BOMB = { proto: gzipSync(Buffer.alloc(4 * READ_MAX_BYTES, 0)), json: gzipSync(Buffer.alloc(4 * READ_MAX_BYTES, 0x20)) };

/** Audit rows server-identity writes for well-formed but wrong credentials; fuzz input is malformed, so none should appear. */
const CREDENTIAL_AUDIT_ACTIONS = new Set(["enrollment.failed", "api_key.exchange_failed", "server.authentication_failed"]);

type Encoding = "proto" | "json";

interface FuzzCase {
  category: string;
  rpc: string;
  request: RawRequest;
  /** Connect codes this case may be refused with. */
  codes: string[];
  /** Plain HTTP statuses Connect answers with before any RPC runs (404 unknown path, 405, 415). */
  statuses?: number[];
  /** A read-only call that may simply succeed. */
  maySucceed?: boolean;
}

function contentType(encoding: Encoding): string {
  return encoding === "proto" ? "application/proto" : "application/json";
}

function headers(encoding: Encoding, authorization?: string, extra: Record<string, string> = {}): Record<string, string> {
  return { "content-type": contentType(encoding), "connect-protocol-version": "1", ...(authorization !== undefined ? { authorization } : {}), ...extra };
}

/** Judges one answer; returns what is wrong with it, or undefined. */
function judge(c: FuzzCase, response: RawResponse): string | undefined {
  if (response.error) return `no proper answer: ${response.error}`;
  if (c.statuses?.includes(response.status)) return undefined;
  const type = String(response.headers["content-type"] ?? "");
  if (response.status === 200) {
    if (c.maySucceed && /^application\/(proto|json)/.test(type)) return undefined;
    return `succeeded (${type}): ${response.body.subarray(0, 200).toString("latin1")}`;
  }
  let error: { code?: unknown; message?: unknown };
  try {
    error = JSON.parse(response.body.toString("utf8")) as typeof error;
  } catch {
    return `HTTP ${response.status} without a Connect error body: ${JSON.stringify(response.body.subarray(0, 200).toString("latin1"))}`;
  }
  if (typeof error.code !== "string") return `HTTP ${response.status} error without a code: ${response.body.subarray(0, 200).toString()}`;
  if (!SPEC_CODES.includes(error.code)) return `answered ${error.code}: ${String(error.message)}`;
  if (!c.codes.includes(error.code)) return `answered ${error.code}, expected one of ${c.codes.join("|")}: ${String(error.message)}`;
  if (typeof error.message !== "string" || error.message.trim() === "") return `answered ${error.code} without a message`;
  if (error.message.length > 2_000) return `answered ${error.code} with a ${error.message.length}-character message (echoing the input?)`;
  return undefined;
}

describe("fuzzing the public API (issue 4: hostile input)", () => {
  let t: TestMesh;
  let tenant: Tenant;
  let rpcs: Rpc[];
  let anonymous: Set<string>;
  let raw: PublicRouter;
  const tokens = {} as Record<"server" | "customer" | "expiredServer" | "expiredCustomer" | "forged" | "unsigned", string>;
  let before: Record<string, TableState>;
  let auditBefore: Set<string>;
  const cases: FuzzCase[] = [];
  const callerKind = new Map<string, "server" | "customer">();
  const random = new Random(SEED);

  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
    tenant = await seedTenant(t, "fuzz");
    rpcs = rpcsOf(publicServicesOf(t.mesh.modules));
    anonymous = anonymousRpcNames(t.mesh.modules);
    // Straight to each service's public port, routed by package as the ingress routes them.
    raw = new PublicRouter(t);

    // Tokens that were valid, then expired; then fresh ones.
    tokens.expiredServer = tenant.serverToken;
    tokens.expiredCustomer = tenant.customerToken;
    t.clock.advance(10 * 60_000);
    const signer = new EdgeVisClient({
      baseUrl: t.publicUrl,
      ca: t.tls.cert,
      tlsPins: [spkiPinOfPem(t.tls.cert)],
      leaseKeys: [],
      identity: tenant.server.identity!,
    });
    tokens.server = await signer.accessToken();
    tokens.customer = (await publicClients(t).identity.exchangeApiKey({ apiKey: tenant.apiKey })).accessToken;
    // Well-formed tokens for the real server and account, signed by a key CLS does not trust.
    const forger = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock: t.clock, ttlMs: 300_000 });
    tokens.forged = (await forger.issueServerToken(tenant.serverId, tenant.accountId)).token;
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const now = Math.floor(t.clock.now().getTime() / 1000);
    tokens.unsigned = `${b64({ alg: "none" })}.${b64({ iss: "cls.server-identity", aud: "cls", sub: tenant.serverId, acc: tenant.accountId, knd: "server", exp: now + 300 })}.`;

    // Which kind of caller each authenticated RPC is for: a server's token on a customer's RPC is
    // refused before anything else, which would hide what the fuzz input does.
    for (const rpc of rpcs.filter((r) => !anonymous.has(r.name))) {
      const probe = await raw.request({ path: rpc.path, headers: headers("json", `Bearer ${tokens.server}`), body: "{}" });
      const code = probe.status === 200 ? "ok" : (JSON.parse(probe.body.toString()) as { code: string }).code;
      callerKind.set(rpc.name, code === "permission_denied" ? "customer" : "server");
    }
    expect(callerKind.get("cls.server_identity.v1.AccountService/ListAccountServers")).toBe("customer");
    expect(callerKind.get("cls.allocation.v1.AllocationService/AcquireLicence")).toBe("server");

    await drainOutboxes(t);
    before = await snapshotTables(t.database.url);
    auditBefore = new Set((await query<{ audit_id: string }>(t.database.url, "select audit_id from server_identity.audit")).map((r) => r.audit_id));
  });
  afterAll(async () => {
    raw?.close();
    await t?.close();
  });

  /** The token of the kind of caller this RPC is meant for. */
  function validToken(rpc: Rpc): string {
    return callerKind.get(rpc.name) === "customer" ? tokens.customer : tokens.server;
  }

  /** A credential that gets nothing: none, garbage, expired, forged or unsigned. */
  function badAuthorization(): string | undefined {
    return random.pick<string | undefined>([
      undefined,
      "Bearer",
      `Bearer ${random.text(40).replace(/[^A-Za-z0-9._-]/g, "x")}`,
      `Bearer ${tokens.expiredServer}`,
      `Bearer ${tokens.expiredCustomer}`,
      `Bearer ${tokens.forged}`,
      `Bearer ${tokens.unsigned}`,
      `Basic ${Buffer.from("admin:admin").toString("base64")}`,
    ]);
  }

  function buildCases(): void {
    const encodings: Encoding[] = ["proto", "json"];
    const add = (c: FuzzCase) => cases.push(c);

    for (const rpc of rpcs) {
      const isAnonymous = anonymous.has(rpc.name);
      const readOnly = READ_ONLY.has(rpc.name);
      // Anonymous credential checks answer a wrong credential as unauthenticated (and may rate-limit).
      const inputCodes = ["invalid_argument", "unauthenticated", ...(isAnonymous ? ["resource_exhausted"] : [])];
      const schema = rpc.method.input;

      for (const encoding of encodings) {
        // 1. Random bytes / random JSON-ish text, without a usable credential (and with one on read-only RPCs).
        for (let i = 0; i < 30; i++) {
          const withToken = readOnly && i % 3 === 0;
          const body = encoding === "proto" ? random.bytes(random.int(0, 160)) : random.next() < 0.5 ? random.jsonish(random.int(0, 160)) : random.bytes(random.int(1, 160));
          add({
            category: "random body",
            rpc: rpc.name,
            request: { path: rpc.path, headers: headers(encoding, withToken ? `Bearer ${validToken(rpc)}` : badAuthorization()), body },
            codes: inputCodes,
            maySucceed: readOnly || rpc.name.endsWith("/GetLeaseKey"),
          });
        }
        // 2. Valid messages cut short.
        for (let i = 0; i < 18; i++) {
          const encoded = encode(schema, sampleMessage(random, schema));
          const full = encoding === "proto" ? Buffer.from(encoded.proto) : Buffer.from(encoded.json);
          if (full.length < 2) continue;
          const withToken = readOnly && i % 3 === 0;
          add({
            category: "truncated message",
            rpc: rpc.name,
            request: { path: rpc.path, headers: headers(encoding, withToken ? `Bearer ${validToken(rpc)}` : badAuthorization()), body: full.subarray(0, random.int(1, full.length - 1)) },
            codes: inputCodes,
            maySucceed: readOnly || rpc.name.endsWith("/GetLeaseKey"),
          });
        }
        // 3. A well-formed request with a credential that gets nothing.
        if (!isAnonymous) {
          const authorizations = [
            undefined,
            "",
            "Bearer",
            "Bearer ",
            "Bearer not-a-token",
            "Bearer a.b.c",
            `bearer ${validToken(rpc)}`,
            `Bearer ${validToken(rpc)}x`,
            `Bearer ${validToken(rpc)} ${validToken(rpc)}`,
            `Bearer ${"A".repeat(8_000)}`,
            `Basic ${Buffer.from("admin:admin").toString("base64")}`,
            `Bearer ${tokens.expiredServer}`,
            `Bearer ${tokens.expiredCustomer}`,
            `Bearer ${tokens.forged}`,
            `Bearer ${tokens.unsigned}`,
            `Bearer ${validToken(rpc).slice(0, -4)}AAAA`,
          ];
          for (const authorization of authorizations) {
            const encoded = encode(schema, sampleMessage(random, schema));
            add({
              category: "bad credential",
              rpc: rpc.name,
              request: { path: rpc.path, headers: headers(encoding, authorization), body: encoding === "proto" ? encoded.proto : encoded.json },
              codes: ["unauthenticated"],
            });
          }
        }
        // 4. Strings and bytes far beyond every limit, with a valid credential.
        const authorization = isAnonymous ? undefined : `Bearer ${validToken(rpc)}`;
        for (const field of schema.fields) {
          const huge = (size: number) => {
            const init = sampleMessage(random, schema);
            if (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) init[field.localName] = random.text(Math.min(size, 64)).repeat(Math.ceil(size / 64)).slice(0, size);
            else if (field.fieldKind === "scalar" && field.scalar === ScalarType.BYTES) init[field.localName] = new Uint8Array(size).fill(0x41);
            else if (field.fieldKind === "list" && field.listKind === "message") {
              const inner = field.message.fields.find((f) => f.fieldKind === "scalar" && f.scalar === ScalarType.STRING);
              if (!inner) return undefined;
              init[field.localName] = [{ ...sampleMessage(random, field.message), [inner.localName]: "x".repeat(size) }];
            } else return undefined;
            return init;
          };
          for (const size of [300, 70_000, 1_000_000]) {
            const init = huge(size);
            if (!init) continue;
            const encoded = encode(schema, init);
            add({
              category: "oversized field",
              rpc: rpc.name,
              request: { path: rpc.path, headers: headers(encoding, authorization), body: encoding === "proto" ? encoded.proto : encoded.json },
              codes: isAnonymous || rpc.name.endsWith("/RotateKey") ? ["invalid_argument", "unauthenticated"] : ["invalid_argument"],
            });
          }
        }
        // 5. A body over the server's size limit (once per RPC, in one encoding or the other), and
        // compressed bodies: a bomb, garbage, an unknown coding.
        if ((encoding === "proto") === (rpcs.indexOf(rpc) % 2 === 0)) {
          add({ category: "body over the limit", rpc: rpc.name, request: { path: rpc.path, headers: headers(encoding, authorization), body: OVERSIZED[encoding] }, codes: ["resource_exhausted"] });
          add({
            category: "compression bomb",
            rpc: rpc.name,
            request: { path: rpc.path, headers: headers(encoding, authorization, { "content-encoding": "gzip" }), body: BOMB[encoding] },
            codes: ["resource_exhausted"],
          });
        }
        add({
          category: "garbage compressed body",
          rpc: rpc.name,
          request: { path: rpc.path, headers: headers(encoding, authorization, { "content-encoding": "gzip" }), body: random.bytes(200) },
          codes: ["invalid_argument"],
        });
        add({
          category: "unknown content coding",
          rpc: rpc.name,
          request: { path: rpc.path, headers: headers(encoding, authorization, { "content-encoding": "zstd" }), body: random.bytes(40) },
          codes: ["unimplemented", "invalid_argument"],
        });
        // 6. Broken Connect headers (with a credential only where a call that got through would merely read).
        const readerAuthorization = () => (readOnly ? `Bearer ${validToken(rpc)}` : badAuthorization());
        for (const extra of [{ "connect-timeout-ms": "soon" }, { "connect-timeout-ms": "-5" }, { "connect-timeout-ms": "99999999999999" }, { "connect-timeout-ms": "" }]) {
          const encoded = encode(schema, sampleMessage(random, schema));
          add({
            category: "broken Connect timeout",
            rpc: rpc.name,
            request: { path: rpc.path, headers: headers(encoding, readerAuthorization(), extra), body: encoding === "proto" ? encoded.proto : encoded.json },
            codes: ["invalid_argument"],
          });
        }
        {
          // Connect servers may ignore the protocol version header (connect-es does unless told to require it).
          const encoded = encode(schema, sampleMessage(random, schema));
          add({
            category: "unknown Connect protocol version",
            rpc: rpc.name,
            request: { path: rpc.path, headers: headers(encoding, readerAuthorization(), { "connect-protocol-version": "2" }), body: encoding === "proto" ? encoded.proto : encoded.json },
            codes: inputCodes,
            maySucceed: readOnly,
          });
        }
      }

      // JSON only: wrong types per field, the wrong kind of document, unknown fields, deep nesting.
      const authorization = isAnonymous ? undefined : `Bearer ${validToken(rpc)}`;
      for (const field of schema.fields) {
        for (const wrong of wrongTypedValues(field)) {
          add({
            category: "wrong JSON type",
            rpc: rpc.name,
            request: { path: rpc.path, headers: headers("json", authorization), body: JSON.stringify({ [field.jsonName]: wrong }) },
            codes: ["invalid_argument"],
          });
        }
      }
      for (const document of ["[]", '"a string"', "42", "true", "null", "", "{", '{"a":1', "{'single':'quotes'}", '{"x":1}{"y":2}', "\u0000\u0001\u0002"]) {
        add({ category: "not a JSON object", rpc: rpc.name, request: { path: rpc.path, headers: headers("json", authorization), body: document }, codes: ["invalid_argument"] });
      }
      // Unknown fields may be ignored (connect-es does), leaving an empty request: credentials only where that merely reads.
      const reader = readOnly || isAnonymous ? authorization : badAuthorization();
      add({
        category: "unknown JSON field",
        rpc: rpc.name,
        request: { path: rpc.path, headers: headers("json", reader), body: '{"noSuchField":1,"__proto__":{"admin":true},"constructor":{"prototype":{"admin":true}}}' },
        codes: inputCodes,
        maySucceed: readOnly || rpc.name.endsWith("/GetLeaseKey"),
      });
      for (const depth of [1_000, 100_000]) {
        const first = schema.fields[0]?.jsonName ?? "x";
        add({ category: "deeply nested JSON", rpc: rpc.name, request: { path: rpc.path, headers: headers("json", authorization), body: "[".repeat(depth) + "]".repeat(depth) }, codes: ["invalid_argument"] });
        add({
          category: "deeply nested JSON",
          rpc: rpc.name,
          request: { path: rpc.path, headers: headers("json", reader), body: `{"${first}":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}` },
          codes: inputCodes,
          // A message without fields takes the nesting as an unknown field it may ignore.
          maySucceed: schema.fields.length === 0 && (readOnly || rpc.name.endsWith("/GetLeaseKey")),
        });
      }
      // Protobuf: deeply nested groups of an unknown field, and a length prefix far past the end.
      add({ category: "deeply nested protobuf", rpc: rpc.name, request: { path: rpc.path, headers: headers("proto", authorization), body: Buffer.alloc(200_000, 0x7b) }, codes: ["invalid_argument"] });
      add({
        category: "lying length prefix",
        rpc: rpc.name,
        request: { path: rpc.path, headers: headers("proto", authorization), body: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41]) },
        codes: ["invalid_argument"],
      });

      // Content types Connect does not speak, and HTTP methods it does not allow.
      const encoded = encode(schema, sampleMessage(random, schema));
      for (const type of ["text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/protobuf", "application/jsonx", "image/png", ""]) {
        add({
          category: "unsupported content type",
          rpc: rpc.name,
          request: { path: rpc.path, headers: { "content-type": type, authorization: `Bearer ${validToken(rpc)}` }, body: encoded.proto },
          codes: [],
          statuses: [415],
        });
      }
      for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
        add({
          category: "HTTP method",
          rpc: rpc.name,
          request: { path: rpc.path, method, headers: headers("proto", `Bearer ${validToken(rpc)}`), ...(method === "GET" ? {} : { body: encoded.proto }) },
          codes: [],
          statuses: [405],
        });
      }
    }

    // CheckEncoders with far more encoders than a batch may hold.
    const check = rpcs.find((r) => r.name === "cls.allocation.v1.AllocationService/CheckEncoders")!;
    for (const size of [5_001, 10_000]) {
      const encoded = encode(check.method.input, { encoders: Array.from({ length: size }, (_, i) => ({ encoderId: `enc-${i}`, firmwareVersion: "9.2.1" })) });
      for (const encoding of ["proto", "json"] as const) {
        add({
          category: "huge batch",
          rpc: check.name,
          request: { path: check.path, headers: headers(encoding, `Bearer ${tokens.server}`), body: encoding === "proto" ? encoded.proto : encoded.json },
          codes: ["invalid_argument"],
        });
      }
    }

    // Paths that are not public RPCs: internal (vendor) services on the public host, made-up methods.
    const publicNames = new Set(rpcs.map((r) => r.name));
    const internal = (Object.values(proto) as unknown[])
      .filter((value): value is DescService => typeof value === "object" && value !== null && (value as { kind?: string }).kind === "service")
      .flatMap((service) => service.methods.map((method) => ({ service, method })))
      .filter(({ service, method }) => !publicNames.has(`${service.typeName}/${method.name}`) && service.typeName.startsWith("cls."));
    expect(internal.length).toBeGreaterThan(10);
    for (const { service, method } of internal) {
      const encoded = encode(method.input, sampleMessage(random, method.input));
      for (const encoding of ["proto", "json"] as const) {
        add({
          category: "internal RPC on the public host",
          rpc: `${service.typeName}/${method.name}`,
          request: { path: `/${service.typeName}/${method.name}`, headers: headers(encoding, `Bearer ${tokens.server}`), body: encoding === "proto" ? encoded.proto : encoded.json },
          codes: ["unimplemented"],
          statuses: [404],
        });
      }
    }
    for (const path of ["/", "/cls.allocation.v1.AllocationService/", "/cls.allocation.v1.AllocationService/Nope", "/cls.allocation.v1.AllocationService/AcquireLicence/extra", "/cls.pool.v1.PoolService", "/../etc/passwd", "/cls.pool.v1.PoolService/ListPools?x=1#y", "/%2e%2e/cls.pool.v1.PoolAdminService/CreateAccount"]) {
      add({
        category: "unknown path",
        rpc: path,
        request: { path, headers: headers("proto", `Bearer ${tokens.server}`), body: new Uint8Array() },
        codes: ["unimplemented"],
        statuses: [404],
        maySucceed: path.startsWith("/cls.pool.v1.PoolService/ListPools?"),
      });
    }
  }

  it("answers thousands of hostile requests at every public RPC with a proper SPEC code, never internal", { timeout: 60_000 }, async () => {
    buildCases();
    expect(cases.length).toBeGreaterThanOrEqual(3_000);
    // Every public RPC is fuzzed.
    for (const rpc of rpcs) expect(cases.filter((c) => c.rpc === rpc.name).length, rpc.name).toBeGreaterThan(100);

    const timing = new Map<string, { n: number; ms: number }>();
    const responses = await mapConcurrent(cases, 24, async (c) => {
      const started = performance.now();
      const answer = await raw.request(c.request);
      const entry = timing.get(c.category) ?? { n: 0, ms: 0 };
      entry.n++;
      entry.ms += performance.now() - started;
      timing.set(c.category, entry);
      return answer;
    });
    if (process.env.FUZZ_DEBUG) console.log([...timing].map(([k, v]) => `${k}: ${v.n} requests, ${Math.round(v.ms)} ms`).join("\n"));
    const problems = new Map<string, string[]>();
    cases.forEach((c, i) => {
      const problem = judge(c, responses[i]!);
      if (!problem) return;
      const key = `${c.category}${c.request.method ? ` (${c.request.method})` : ""}: ${problem.replace(/[0-9a-f]{32}|\d+/g, "#").slice(0, 160)}`;
      const list = problems.get(key) ?? [];
      list.push(c.rpc);
      problems.set(key, list);
    });
    const report = [...problems.entries()].map(([problem, where]) => `${problem} (${where.length}×, e.g. ${[...new Set(where)].slice(0, 3).join(", ")})`);
    expect(report, `seed ${SEED}`).toEqual([]);
  });

  it("wrote nothing to the database", async () => {
    await drainOutboxes(t);
    const after = await snapshotTables(t.database.url);
    const audit = await query<{ audit_id: string; action: string }>(t.database.url, "select audit_id, action from server_identity.audit");
    const newAudit = audit.filter((row) => !auditBefore.has(row.audit_id));
    // Only the deliberate audit of well-formed but wrong credentials could be there; the fuzz input is malformed, so none is.
    expect(newAudit.filter((row) => !CREDENTIAL_AUDIT_ACTIONS.has(row.action))).toEqual([]);
    expect(newAudit).toEqual([]);
    expect(after).toEqual(before);
  });

  it("keeps every process up: health checks answer and a normal licensing call still works", async () => {
    for (const [name, urls] of Object.entries(t.mesh.urls)) {
      const health = new RawHttp2Client(urls.publicUrl, t.tls.cert);
      const answer = await health.request({ path: "/grpc.health.v1.Health/Check", headers: { "content-type": "application/json" }, body: "{}" });
      health.close();
      expect(answer.status, name).toBe(200);
      expect(JSON.parse(answer.body.toString())).toEqual({ status: "SERVING" });
    }
    const { pools } = await publicClients(t, { token: tokens.customer }).pools.listPools({});
    expect(pools.map((p) => p.poolId)).toContain(tenant.poolId);
    const granted = await publicClients(t, { token: tokens.server }).allocation.acquireLicence({ encoderId: tenant.encoderId, cameraId: "after-the-fuzz" });
    expect(granted.allocation?.cameraId).toBe("after-the-fuzz");
  });
});

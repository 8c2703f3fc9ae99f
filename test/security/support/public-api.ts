import { ScalarType, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { pinnedIdentityCheck, spkiPinOfPem } from "@cls/edgevis-client";
import { AccountService, AllocationService, NotificationService, PoolService, ServerIdentityService } from "@cls/proto";
import type { ServiceModule } from "@cls/runtime";

/**
 * Helpers for calling CLS's public API as an attacker or a customer would: raw Connect clients
 * with whatever bearer token the test chooses, over pinned HTTPS.
 */

/** Where a public client connects: CLS's public URL and the certificate it presents. */
export interface PublicEndpoint {
  publicUrl: string;
  tls: { cert: string };
}

/**
 * The services each module serves on its public port, as the running mesh really routes them:
 * new public services and new RPCs appear here without any change to the tests.
 */
export function publicServicesOf(modules: Record<string, ServiceModule>): DescService[] {
  const byName = new Map<string, DescService>();
  for (const module of Object.values(modules)) for (const binding of module.publicServices) byName.set(binding.service.typeName, binding.service);
  return [...byName.values()].sort((a, b) => a.typeName.localeCompare(b.typeName));
}

/** `pkg.Service/Method` of every public RPC. */
export function publicRpcNames(services: readonly DescService[]): string[] {
  return services.flatMap((service) => service.methods.map((method) => `${service.typeName}/${method.name}`));
}

/** Methods callable without an access token, as the modules declare them. */
export function anonymousRpcNames(modules: Record<string, ServiceModule>): Set<string> {
  return new Set(Object.values(modules).flatMap((module) => module.anonymousMethods));
}

export interface TransportOptions {
  /** Sent as `authorization: Bearer <token>`; a function is asked before every call. */
  token?: string | (() => string | Promise<string>);
  /** Extra headers on every call. */
  headers?: Record<string, string>;
  /** Binds the client's socket to this local address (e.g. 127.0.0.2). */
  localAddress?: string;
  baseUrl?: string;
}

/** A Connect transport to CLS's public URL, pinned to its certificate's key like an EdgeVis Server. */
export function publicTransport(endpoint: PublicEndpoint, options: TransportOptions = {}): Transport {
  const inject: Interceptor = (next) => async (req) => {
    for (const [name, value] of Object.entries(options.headers ?? {})) req.header.set(name, value);
    if (options.token !== undefined) {
      const token = typeof options.token === "function" ? await options.token() : options.token;
      req.header.set("authorization", `Bearer ${token}`);
    }
    return next(req);
  };
  return createConnectTransport({
    baseUrl: options.baseUrl ?? endpoint.publicUrl,
    httpVersion: "2",
    interceptors: [inject],
    nodeOptions: {
      ca: endpoint.tls.cert,
      checkServerIdentity: pinnedIdentityCheck([spkiPinOfPem(endpoint.tls.cert)]),
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    },
  });
}

/** One client per public service, all over the same transport. */
export interface PublicClients {
  transport: Transport;
  allocation: Client<typeof AllocationService>;
  pools: Client<typeof PoolService>;
  identity: Client<typeof ServerIdentityService>;
  account: Client<typeof AccountService>;
  notifications: Client<typeof NotificationService>;
}

export function publicClients(endpoint: PublicEndpoint, options: TransportOptions = {}): PublicClients {
  const transport = publicTransport(endpoint, options);
  return {
    transport,
    allocation: createClient(AllocationService, transport),
    pools: createClient(PoolService, transport),
    identity: createClient(ServerIdentityService, transport),
    account: createClient(AccountService, transport),
    notifications: createClient(NotificationService, transport),
  };
}

/** Calls any public RPC by descriptor with a plain request object. */
export async function callRpc(
  transport: Transport,
  service: DescService,
  methodName: string,
  request: Record<string, unknown>,
): Promise<{ response: unknown; headers: Headers; trailers: Headers }> {
  const client = createClient(service, transport) as unknown as Record<string, (req: unknown, options?: unknown) => Promise<unknown>>;
  const method = service.methods.find((m) => m.name === methodName);
  if (!method) throw new Error(`${service.typeName} has no method ${methodName}`);
  let headers = new Headers();
  let trailers = new Headers();
  const response = await client[method.localName]!(request, {
    onHeader: (h: Headers) => (headers = h),
    onTrailer: (t: Headers) => (trailers = t),
  });
  return { response, headers, trailers };
}

/** Awaits a promise that must be rejected with a ConnectError, and returns the error. */
export async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) throw new Error(`expected a refusal, got ${printable(outcome.value)}`);
  return ConnectError.from(outcome.error);
}

/** The Connect code name (`permission_denied`) of a code. */
export function codeName(code: Code): string {
  return Code[code]!.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/**
 * Every string a value carries, for searching: message fields, map keys, header values, and
 * bytes fields decoded as Latin-1 (a signed lease's bytes are a binary protobuf whose strings
 * appear there verbatim).
 */
export function printable(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, function replacer(_key, v: unknown) {
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Uint8Array) return `bytes:${Buffer.from(v).toString("latin1")}`;
    if (v instanceof Headers) return Object.fromEntries(v.entries());
    if (v instanceof Error) {
      const error = v as Error & { rawMessage?: string; details?: unknown; metadata?: Headers; code?: unknown };
      return { name: error.name, message: error.message, rawMessage: error.rawMessage, code: error.code, details: error.details, metadata: error.metadata };
    }
    if (typeof v === "object" && v !== null) {
      if (seen.has(v)) return "[cycle]";
      seen.add(v);
    }
    return v;
  });
}

/** The string and bytes fields (recursively) of a message descriptor, as dotted paths. */
export function fieldPaths(message: DescMessage, prefix = ""): { path: string; kind: "string" | "bytes" }[] {
  const paths: { path: string; kind: "string" | "bytes" }[] = [];
  for (const field of message.fields) {
    const path = `${prefix}${field.name}`;
    const textual = (scalar: ScalarType) => scalar === ScalarType.STRING || scalar === ScalarType.BYTES;
    const kindOf = (scalar: ScalarType) => (scalar === ScalarType.STRING ? ("string" as const) : ("bytes" as const));
    if (field.fieldKind === "scalar" && textual(field.scalar)) paths.push({ path, kind: kindOf(field.scalar) });
    if (field.fieldKind === "list" && field.listKind === "scalar" && textual(field.scalar)) paths.push({ path: `${path}[]`, kind: kindOf(field.scalar) });
    if ((field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")) && !field.message.typeName.startsWith("google.protobuf.")) {
      paths.push(...fieldPaths(field.message, `${path}${field.fieldKind === "list" ? "[]" : ""}.`));
    }
  }
  return paths;
}

/** The values found at a dotted field path (proto field names) of a plain request object. */
export function valuesAt(request: unknown, path: string): unknown[] {
  const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
  let current: unknown[] = [request];
  for (const part of path.split(".")) {
    const list = part.endsWith("[]");
    const name = camel(list ? part.slice(0, -2) : part);
    current = current.flatMap((value) => {
      const next = value && typeof value === "object" ? (value as Record<string, unknown>)[name] : undefined;
      if (next === undefined) return [];
      return list && Array.isArray(next) ? next : [next];
    });
  }
  return current;
}

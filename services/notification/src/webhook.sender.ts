import { createHmac } from "node:crypto";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";

/** How long one delivery may take, connecting through the response's status line. */
export const DEFAULT_DELIVERY_TIMEOUT_MS = 5_000;

/** What a customer's endpoint receives as the JSON body of a delivery (SPEC L15). */
export interface WebhookPayload {
  event_id: string;
  account_id: string;
  type: string;
  /** RFC 3339. */
  occurred_at: string;
  data: Record<string, unknown>;
}

export interface WebhookRequest {
  url: string;
  signingSecret: string;
  payload: WebhookPayload;
  /** The signature's timestamp (the service clock). */
  now: Date;
  timeoutMs?: number;
  /** Development and tests only: allow `http:` and targets that resolve to private addresses. */
  allowPrivateTargets?: boolean;
}

/** A delivery's outcome. `error` is a fixed phrase, never an address (SPEC L13). */
export type WebhookResult = { ok: true; status: number } | { ok: false; status?: number; error: string };

/**
 * The `cls-signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>` over `<t>.<body>`, keyed
 * with the webhook's signing secret (its text as UTF-8). A receiver recomputes it over the raw
 * body, compares in constant time, and refuses a `t` too far from its own clock.
 */
export function signatureHeader(signingSecret: string, unixSeconds: number, body: string): string {
  const mac = createHmac("sha256", signingSecret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

/** Codes of errors this module raises itself. */
const TIMEOUT = "ECLS_TIMEOUT";
const PRIVATE_TARGET = "ECLS_PRIVATE_TARGET";

/** Fixed phrases for the network errors Node reports; their messages carry addresses and are never used. */
const ERROR_WORDS: Record<string, string> = {
  [TIMEOUT]: "timeout",
  [PRIVATE_TARGET]: "private address refused",
  ETIMEDOUT: "timeout",
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  EPIPE: "connection reset",
  ECONNABORTED: "connection reset",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found",
  EAI_NONAME: "host not found",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  EHOSTDOWN: "host unreachable",
  EADDRNOTAVAIL: "connection failed",
};

function errorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") return code;
  // A connection tried on several addresses (happy eyeballs) fails with all of their errors.
  const inner = (error as { errors?: unknown }).errors;
  return Array.isArray(inner) ? inner.map(errorCode).find((c) => c !== undefined) : undefined;
}

/**
 * A failed request as a fixed phrase: the error's code is mapped, its message (which names
 * addresses such as 127.0.0.1:4321) is never used (SPEC L13).
 */
export function describeDeliveryError(error: unknown): string {
  const code = errorCode(error);
  if (code === undefined) return "connection failed";
  const word = ERROR_WORDS[code];
  if (word) return word;
  if (code.startsWith("HPE_")) return "invalid response";
  if (/CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME_MISMATCH|ERR_OSSL/.test(code)) return "tls error";
  return "connection failed";
}

/** Loopback, private, link-local, shared, multicast and reserved ranges: never a customer's public endpoint. */
const PRIVATE_RANGES = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  PRIVATE_RANGES.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["64:ff9b::", 96],
  ["100::", 64],
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
] as const) {
  PRIVATE_RANGES.addSubnet(network, prefix, "ipv6");
}

/**
 * True for an address no public webhook endpoint has (loopback, private, link-local, …).
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are checked against the IPv4 ranges.
 */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return PRIVATE_RANGES.check(address, family === 4 ? "ipv4" : "ipv6");
}

function privateTargetError(): Error {
  return Object.assign(new Error("the webhook's host resolves to a private address"), { code: PRIVATE_TARGET });
}

/**
 * Resolves as `dns.lookup` does, refusing any host with a private address among its answers:
 * a public name pointed at the internal network (or re-pointed after validation) is no way in.
 */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, "", 4);
    if (addresses.length === 0 || addresses.some((a) => isPrivateAddress(a.address))) return callback(privateTargetError(), "", 4);
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
    const first = addresses[0]!;
    callback(null, first.address, first.family);
  });
};

/**
 * POSTs one event to a webhook, signed (SPEC L15). Redirects are not followed; only a 2xx
 * status counts as delivered; the whole exchange is bounded by `timeoutMs` (real time). The
 * response body is not read.
 */
export function sendWebhook(request: WebhookRequest): Promise<WebhookResult> {
  const body = JSON.stringify(request.payload);
  const unixSeconds = Math.floor(request.now.getTime() / 1000);
  const allowPrivate = request.allowPrivateTargets ?? false;
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return Promise.resolve({ ok: false, error: "invalid url" });
  }
  if (url.protocol !== "https:" && !(allowPrivate && url.protocol === "http:")) return Promise.resolve({ ok: false, error: "insecure url refused" });
  const literal = url.hostname.replace(/^\[|\]$/g, "");
  // Node connects to an IP literal without a lookup, so the lookup's check would not see it.
  if (!allowPrivate && isIP(literal) !== 0 && isPrivateAddress(literal)) return Promise.resolve({ ok: false, error: "private address refused" });
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise<WebhookResult>((resolve) => {
    let settled = false;
    const finish = (result: WebhookResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const req = send(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "user-agent": "CLS-Webhooks/1",
        "cls-event-id": request.payload.event_id,
        "cls-signature": signatureHeader(request.signingSecret, unixSeconds, body),
      },
      agent: false,
      ...(allowPrivate ? {} : { lookup: publicOnlyLookup }),
    });
    const timer = setTimeout(() => req.destroy(Object.assign(new Error("webhook delivery timed out"), { code: TIMEOUT })), request.timeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS);
    req.on("response", (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      // Only the status matters; the body is not read, whatever its size.
      res.destroy();
      req.destroy();
      finish(status >= 200 && status < 300 ? { ok: true, status } : { ok: false, status, error: `HTTP ${status}` });
    });
    req.on("error", (error) => finish({ ok: false, error: describeDeliveryError(error) }));
    req.end(body);
  });
}

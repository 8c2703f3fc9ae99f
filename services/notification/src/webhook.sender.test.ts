import { createHmac } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { startTestEndpoint, type TestEndpoint } from "./webhook.fixture.js";
import { describeDeliveryError, isPrivateAddress, sendWebhook, signatureHeader, type WebhookRequest } from "./webhook.sender.js";

const payload = { event_id: "evt_0123456789abcdef0123456789abcdef", account_id: "acc_0123456789abcdef0123456789abcdef", type: "pool.expired", occurred_at: "2030-01-01T00:00:00.000Z", data: { pool_id: "pool_1" } };
let endpoint: TestEndpoint | undefined;

afterEach(async () => {
  await endpoint?.close();
  endpoint = undefined;
});

function request(url: string, more: Partial<WebhookRequest> = {}): WebhookRequest {
  return { url, signingSecret: "secret", payload, now: new Date("2030-01-01T00:00:05Z"), timeoutMs: 2_000, allowPrivateTargets: true, ...more };
}

// SPEC L15: deliveries are signed.
describe("signatureHeader", () => {
  it("is t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>' keyed with the secret>", () => {
    const body = JSON.stringify(payload);
    const expected = createHmac("sha256", "s3cret").update(`1893456005.${body}`).digest("hex");
    expect(signatureHeader("s3cret", 1893456005, body)).toBe(`t=1893456005,v1=${expected}`);
    expect(signatureHeader("other", 1893456005, body)).not.toBe(`t=1893456005,v1=${expected}`);
  });
});

// SPEC L13: an error's message names the address; only its code is used.
describe("describeDeliveryError", () => {
  const withCode = (code: string, message: string) => Object.assign(new Error(message), { code });

  it.each([
    ["ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:4321", "connection refused"],
    ["ECONNRESET", "read ECONNRESET", "connection reset"],
    ["ETIMEDOUT", "connect ETIMEDOUT 10.1.2.3:443", "timeout"],
    ["ENOTFOUND", "getaddrinfo ENOTFOUND hooks.example.com", "host not found"],
    ["EHOSTUNREACH", "connect EHOSTUNREACH 192.168.1.9:443", "host unreachable"],
    ["CERT_HAS_EXPIRED", "certificate has expired", "tls error"],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate", "tls error"],
    ["ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames: IP: 10.0.0.1", "tls error"],
    ["HPE_INVALID_CONSTANT", "Parse Error: Expected HTTP/", "invalid response"],
    ["ESOMETHINGNEW", "connect ESOMETHINGNEW [::1]:80", "connection failed"],
  ])("maps %s to a fixed phrase", (code, message, phrase) => {
    expect(describeDeliveryError(withCode(code, message))).toBe(phrase);
  });

  it("reads the code of a connection tried on several addresses, and has a phrase for anything else", () => {
    const aggregate = new AggregateError([withCode("ECONNREFUSED", "connect ECONNREFUSED ::1:80"), withCode("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:80")]);
    expect(describeDeliveryError(aggregate)).toBe("connection refused");
    expect(describeDeliveryError(new Error("10.0.0.1 said no"))).toBe("connection failed");
    expect(describeDeliveryError("nonsense")).toBe("connection failed");
  });
});

describe("isPrivateAddress", () => {
  it.each(["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "::", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "not-an-ip"])(
    "refuses %s",
    (address) => expect(isPrivateAddress(address)).toBe(true),
  );
  it.each(["93.184.216.34", "8.8.8.8", "::ffff:8.8.8.8", "2606:4700:4700::1111"])("accepts %s", (address) => expect(isPrivateAddress(address)).toBe(false));
});

describe("sendWebhook", () => {
  it("refuses a host that resolves to a private address unless private targets are allowed, without connecting", async () => {
    endpoint = await startTestEndpoint();
    const httpsUrl = endpoint.url.replace("http:", "https:");
    expect(await sendWebhook(request(httpsUrl, { allowPrivateTargets: false }))).toEqual({ ok: false, error: "private address refused" });
    expect(await sendWebhook(request("https://127.0.0.1:1/", { allowPrivateTargets: false }))).toEqual({ ok: false, error: "private address refused" });
    expect(await sendWebhook(request(endpoint.url, { allowPrivateTargets: false }))).toEqual({ ok: false, error: "insecure url refused" });
    expect(endpoint.received).toEqual([]);
    expect(await sendWebhook(request(endpoint.url))).toEqual({ ok: true, status: 204 });
  });

  it("counts only a 2xx as delivered and follows no redirect", async () => {
    endpoint = await startTestEndpoint();
    endpoint.behaviour = 301;
    expect(await sendWebhook(request(endpoint.url))).toEqual({ ok: false, status: 301, error: "HTTP 301" });
    endpoint.behaviour = 200;
    expect(await sendWebhook(request(endpoint.url))).toEqual({ ok: true, status: 200 });
    expect(endpoint.received).toHaveLength(2);
  });

  it("gives up after the timeout", async () => {
    endpoint = await startTestEndpoint();
    endpoint.behaviour = "hang";
    expect(await sendWebhook(request(endpoint.url, { timeoutMs: 200 }))).toEqual({ ok: false, error: "timeout" });
  });
});

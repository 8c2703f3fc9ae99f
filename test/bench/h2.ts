/**
 * The smallest Connect unary client over HTTP/2 the benchmark needs: one POST per call with
 * `application/proto`, `connect-protocol-version: 1` and a bearer token, as an EdgeVis Server
 * sends it (libs/edgevis-client uses connect-node, which puts the same bytes on the wire).
 * Raw `node:http2` keeps the load generator's own CPU cost low on a small machine.
 */
import http2 from "node:http2";

export interface UnaryResult {
  /** HTTP status: 200 is success; anything else carries a Connect error as JSON. */
  status: number;
  body: Buffer;
}

/** Opens one TLS HTTP/2 connection, trusting only `ca` (the service's self-signed certificate). */
export function openSession(url: string, ca: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, { ca, servername: "localhost" });
    const fail = (error: Error) => reject(error);
    session.once("error", fail);
    session.once("connect", () => {
      session.off("error", fail);
      // A session error after connecting surfaces on its streams; it must not crash the generator.
      session.on("error", () => {});
      resolve(session);
    });
  });
}

/** One Connect unary call: `path` is `/package.Service/Method`. */
export function unary(session: http2.ClientHttp2Session, path: string, body: Uint8Array, token?: string): Promise<UnaryResult> {
  return new Promise((resolve, reject) => {
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/proto",
      "connect-protocol-version": "1",
    };
    if (token) headers.authorization = `Bearer ${token}`;
    const stream = session.request(headers);
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (responseHeaders) => {
      status = Number(responseHeaders[":status"]);
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve({ status, body: Buffer.concat(chunks) }));
    stream.on("error", reject);
    stream.end(body);
  });
}

/** The Connect error code of a failed call (`resource_exhausted`, …), or `http_<status>`. */
export function errorCodeOf(result: UnaryResult): string {
  try {
    const parsed = JSON.parse(result.body.toString("utf8")) as { code?: unknown };
    if (typeof parsed.code === "string") return parsed.code;
  } catch {
    // Not a Connect error body.
  }
  return `http_${result.status}`;
}

/** The error message of a failed call, for people to read. */
export function errorMessageOf(result: UnaryResult): string {
  try {
    const parsed = JSON.parse(result.body.toString("utf8")) as { message?: unknown };
    if (typeof parsed.message === "string") return parsed.message;
  } catch {
    // Not a Connect error body.
  }
  return result.body.toString("utf8").slice(0, 200);
}

export const ACQUIRE_PATH = "/cls.allocation.v1.AllocationService/AcquireLicence";
export const REGISTER_PATH = "/cls.allocation.v1.AllocationService/RegisterEncoder";
export const CHECK_ENCODERS_PATH = "/cls.allocation.v1.AllocationService/CheckEncoders";
export const LEASE_KEY_PATH = "/cls.allocation.v1.AllocationService/GetLeaseKey";

import type { KeyObject } from "node:crypto";
import { InvalidArgumentError } from "@cls/errors";
import { publicKeyFromRaw } from "@cls/lease";

// Curve25519 in twisted Edwards form: -x² + y² = 1 + d·x²·y² over GF(p).
const P = 2n ** 255n - 19n;
const D = mod(-121665n * inverse(121666n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

function mod(a: bigint): bigint {
  const r = a % P;
  return r >= 0n ? r : r + P;
}

function pow(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
}

function inverse(a: bigint): bigint {
  return pow(a, P - 2n);
}

type Point = [x: bigint, y: bigint];

/** RFC 8032 §5.1.3 point decoding; undefined when the bytes name no curve point. */
function decodePoint(raw: Uint8Array): Point | undefined {
  const bytes = Uint8Array.from(raw);
  const last = bytes[31]!;
  const xSign = BigInt(last >> 7);
  bytes[31] = last & 0x7f;
  const y = bytes.reduceRight((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
  if (y >= P) return undefined;
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n));
  const vx2 = mod(v * x * x);
  if (vx2 === mod(-u)) x = mod(x * SQRT_M1);
  else if (vx2 !== u) return undefined;
  if (x === 0n && xSign === 1n) return undefined;
  if ((x & 1n) !== xSign) x = P - x;
  return [x, y];
}

function double([x, y]: Point): Point {
  const dxy = mod(D * x * x * y * y);
  return [mod(2n * x * y * inverse(1n + dxy)), mod((y * y + x * x) * inverse(1n - dxy))];
}

/**
 * The key object for an enrolling server's raw public key. Refuses bytes that are not a
 * curve point and the small-order points, for which signatures can be forged without the
 * private key; node:crypto accepts both without complaint.
 */
export function requireEd25519PublicKey(field: string, raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new InvalidArgumentError(field, `must be a raw 32-byte Ed25519 public key, got ${raw.length} bytes`);
  const point = decodePoint(raw);
  if (!point) throw new InvalidArgumentError(field, "is not a valid Ed25519 public key");
  const times8 = double(double(double(point)));
  if (times8[0] === 0n && times8[1] === 1n) throw new InvalidArgumentError(field, "is a weak Ed25519 key (small order); generate a new key pair");
  try {
    return publicKeyFromRaw(raw);
  } catch {
    throw new InvalidArgumentError(field, "is not a valid Ed25519 public key");
  }
}

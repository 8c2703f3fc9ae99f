import { randomBytes } from "node:crypto";

const PREFIX = "cls-challenge-v1";
const CHALLENGE_PATTERN = /^cls-challenge-v1\.(chl_[0-9a-f]{32})\.([A-Za-z0-9_-]{43})$/;

/** How long a server has to sign a challenge. */
export const CHALLENGE_TTL_MS = 60_000;

/** 32 random bytes, base64url: what makes each challenge unique. */
export function newNonce(): string {
  return randomBytes(32).toString("base64url");
}

/** The exact bytes a server signs: UTF-8 of `cls-challenge-v1.<challenge_id>.<nonce>`. */
export function challengeBytes(challengeId: string, nonce: string): Uint8Array {
  return new TextEncoder().encode(`${PREFIX}.${challengeId}.${nonce}`);
}

/** The challenge id and nonce inside challenge bytes; undefined when they are not a challenge. */
export function parseChallenge(bytes: Uint8Array): { challengeId: string; nonce: string } | undefined {
  if (bytes.length === 0 || bytes.length > 256) return undefined;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  const match = CHALLENGE_PATTERN.exec(text);
  return match ? { challengeId: match[1]!, nonce: match[2]! } : undefined;
}

import { generateKeyPairSync } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ClsError } from "@cls/errors";
import { rawPublicKey } from "@cls/lease";
import { requireEd25519PublicKey } from "./ed25519-key.js";

function refusal(raw: Uint8Array): ClsError {
  try {
    requireEd25519PublicKey("public_key", raw);
  } catch (error) {
    if (error instanceof ClsError) return error;
    throw error;
  }
  throw new Error("key was accepted");
}

describe("enrolling public keys (SPEC L11)", () => {
  it("accepts freshly generated Ed25519 keys", () => {
    for (let i = 0; i < 20; i++) {
      const raw = rawPublicKey(generateKeyPairSync("ed25519").publicKey);
      expect(requireEd25519PublicKey("public_key", raw).asymmetricKeyType).toBe("ed25519");
    }
  });

  it("refuses a key that is not 32 bytes, saying how long it was", () => {
    const error = refusal(new Uint8Array(31));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toBe("public_key: must be a raw 32-byte Ed25519 public key, got 31 bytes");
  });

  it("refuses small-order points, whose signatures anyone can forge", () => {
    const identity = new Uint8Array(32);
    identity[0] = 1; // (0, 1), the neutral element
    expect(refusal(identity).message).toMatch(/small order/);
    expect(refusal(new Uint8Array(32)).message).toMatch(/small order/); // (√-1, 0), order 4
    const minusOne = new Uint8Array(32).fill(0xff);
    minusOne[0] = 0xec;
    minusOne[31] = 0x7f;
    expect(refusal(minusOne).message).toMatch(/small order/); // (0, -1), order 2
  });

  it("refuses bytes that are not a curve point or not canonical", () => {
    expect(refusal(new Uint8Array(32).fill(0xff)).code).toBe(Code.InvalidArgument); // y ≥ p
    const notOnCurve = new Uint8Array(32);
    notOnCurve[0] = 2; // y = 2 has no matching x
    expect(refusal(notOnCurve).message).toBe("public_key: is not a valid Ed25519 public key");
  });
});

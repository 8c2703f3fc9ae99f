import { describe, expect, it } from "vitest";
import { readServerIdentityConfig } from "./config.js";

const complete = {
  TOKEN_SIGNING_KEY_FILE: "/etc/cls/token-key.pem",
  POOL_INTERNAL_URL: "http://cls-pool:9090",
  ALLOCATION_INTERNAL_URL: "http://cls-allocation:9090",
  NOTIFICATION_INTERNAL_URL: "http://cls-notification:9090",
};

describe("server-identity configuration", () => {
  it("defaults the access token lifetime to 300 seconds", () => {
    const config = readServerIdentityConfig(complete);
    expect(config.TOKEN_TTL_SECONDS).toBe(300);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("fails fast naming a missing signing key and neighbour address", () => {
    expect(() => readServerIdentityConfig({ ...complete, TOKEN_SIGNING_KEY_FILE: undefined })).toThrow(/TOKEN_SIGNING_KEY_FILE/);
    expect(() => readServerIdentityConfig({ ...complete, POOL_INTERNAL_URL: "" })).toThrow(/POOL_INTERNAL_URL/);
  });

  it("keeps the token lifetime between 30 seconds and an hour", () => {
    expect(readServerIdentityConfig({ ...complete, TOKEN_TTL_SECONDS: "3600" }).TOKEN_TTL_SECONDS).toBe(3600);
    expect(() => readServerIdentityConfig({ ...complete, TOKEN_TTL_SECONDS: "29" })).toThrow(/TOKEN_TTL_SECONDS/);
    expect(() => readServerIdentityConfig({ ...complete, TOKEN_TTL_SECONDS: "3601" })).toThrow(/TOKEN_TTL_SECONDS/);
  });
});

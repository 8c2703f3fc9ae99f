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

  it("defaults the brute-force limits and refuses a zero limit naming the variable (issue 4)", () => {
    const config = readServerIdentityConfig(complete);
    expect(config).toMatchObject({
      ENROLLMENT_FAILURES_PER_CODE: 5,
      ENROLLMENT_FAILURES_PER_MINUTE: 20,
      API_KEY_FAILURES_PER_KEY: 5,
      API_KEY_FAILURES_PER_MINUTE: 20,
      AUTHENTICATE_FAILURES_PER_SERVER: 10,
      CHALLENGES_PER_SERVER_PER_MINUTE: 30,
    });
    expect(readServerIdentityConfig({ ...complete, ENROLLMENT_FAILURES_PER_MINUTE: "100" }).ENROLLMENT_FAILURES_PER_MINUTE).toBe(100);
    for (const name of ["ENROLLMENT_FAILURES_PER_CODE", "ENROLLMENT_FAILURES_PER_MINUTE", "API_KEY_FAILURES_PER_KEY", "API_KEY_FAILURES_PER_MINUTE", "AUTHENTICATE_FAILURES_PER_SERVER", "CHALLENGES_PER_SERVER_PER_MINUTE"]) {
      expect(() => readServerIdentityConfig({ ...complete, [name]: "0" })).toThrow(new RegExp(name));
    }
  });
});

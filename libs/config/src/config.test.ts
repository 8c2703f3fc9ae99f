import { describe, expect, it } from "vitest";
import { logLevel, optionalUrl, port, readConfig, serviceBaseShape, z } from "./index.js";

const shape = {
  SERVICE_NAME: z.string(),
  PUBLIC_PORT: port(8443),
  DATABASE_URL: optionalUrl(),
  LOG_LEVEL: logLevel(),
  RECLAIM_INTERVAL_MS: z.coerce.number().int().min(1).default(60_000),
};

/** The error message readConfig throws for `env`. */
function failure(env: Record<string, string | undefined>, configShape: z.ZodRawShape = shape): string {
  try {
    readConfig(configShape, env);
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return (error as Error).message;
  }
  throw new Error("readConfig accepted the environment");
}

describe("readConfig", () => {
  it("fills in defaults and returns a frozen object", () => {
    const config = readConfig(shape, { SERVICE_NAME: "pool" });
    expect(config).toEqual({ SERVICE_NAME: "pool", PUBLIC_PORT: 8443, DATABASE_URL: undefined, LOG_LEVEL: "info", RECLAIM_INTERVAL_MS: 60_000 });
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { PUBLIC_PORT: number }).PUBLIC_PORT = 1;
    }).toThrow(TypeError);
    expect(config.PUBLIC_PORT).toBe(8443);
  });

  it("reads and coerces set variables", () => {
    const config = readConfig(shape, {
      SERVICE_NAME: "allocation",
      PUBLIC_PORT: "0",
      DATABASE_URL: "postgres://cls@db:5432/cls",
      LOG_LEVEL: "debug",
      RECLAIM_INTERVAL_MS: "250",
    });
    expect(config).toEqual({
      SERVICE_NAME: "allocation",
      PUBLIC_PORT: 0,
      DATABASE_URL: "postgres://cls@db:5432/cls",
      LOG_LEVEL: "debug",
      RECLAIM_INTERVAL_MS: 250,
    });
  });

  it("only reads the variables its shape names", () => {
    const config = readConfig(shape, { SERVICE_NAME: "pool", HOME: "/root", SECRET: "x" });
    expect(Object.keys(config).sort()).toEqual(["DATABASE_URL", "LOG_LEVEL", "PUBLIC_PORT", "RECLAIM_INTERVAL_MS", "SERVICE_NAME"]);
  });

  it("names a missing required variable", () => {
    expect(failure({})).toContain("SERVICE_NAME");
  });

  it("names each invalid variable", () => {
    expect(failure({ SERVICE_NAME: "pool", PUBLIC_PORT: "70000" })).toContain("PUBLIC_PORT");
    expect(failure({ SERVICE_NAME: "pool", PUBLIC_PORT: "http" })).toContain("PUBLIC_PORT");
    expect(failure({ SERVICE_NAME: "pool", PUBLIC_PORT: "-1" })).toContain("PUBLIC_PORT");
    expect(failure({ SERVICE_NAME: "pool", PUBLIC_PORT: "80.5" })).toContain("PUBLIC_PORT");
    expect(failure({ SERVICE_NAME: "pool", DATABASE_URL: "not a url" })).toContain("DATABASE_URL");
    expect(failure({ SERVICE_NAME: "pool", LOG_LEVEL: "verbose" })).toContain("LOG_LEVEL");
    expect(failure({ SERVICE_NAME: "pool", RECLAIM_INTERVAL_MS: "0" })).toContain("RECLAIM_INTERVAL_MS");
  });

  it("names every bad variable at once", () => {
    const message = failure({ PUBLIC_PORT: "99999", LOG_LEVEL: "loud" });
    expect(message).toContain("SERVICE_NAME");
    expect(message).toContain("PUBLIC_PORT");
    expect(message).toContain("LOG_LEVEL");
    expect(message).not.toContain("DATABASE_URL");
  });

  it("treats an empty string as unset: defaults apply, required variables are missing", () => {
    const config = readConfig(shape, { SERVICE_NAME: "pool", PUBLIC_PORT: "", DATABASE_URL: "", LOG_LEVEL: "" });
    expect(config.PUBLIC_PORT).toBe(8443);
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.LOG_LEVEL).toBe("info");
    expect(failure({ SERVICE_NAME: "" })).toContain("SERVICE_NAME");
  });

  it("never turns a blank port variable into port 0 (a random port): it is unset or refused", () => {
    for (const blank of [" ", "\t", "  \n"]) {
      let outcome: string;
      try {
        outcome = String(readConfig({ PUBLIC_PORT: port(8443) }, { PUBLIC_PORT: blank }).PUBLIC_PORT);
      } catch (error) {
        outcome = (error as Error).message.includes("PUBLIC_PORT") ? "refused" : `other error: ${(error as Error).message}`;
      }
      expect(["8443", "refused"], JSON.stringify(blank)).toContain(outcome);
    }
  });

  it("reads process.env when no environment is given", () => {
    const name = `CLS_CONFIG_TEST_${process.pid}`;
    process.env[name] = "from-process";
    try {
      expect(readConfig({ [name]: z.string() })[name]).toBe("from-process");
    } finally {
      delete process.env[name];
    }
  });
});

describe("serviceBaseShape", () => {
  it("has working defaults for every service", () => {
    const config = readConfig(serviceBaseShape, {});
    expect(config).toMatchObject({
      DATABASE_MAX_CONNECTIONS: 10,
      PUBLIC_PORT: 8443,
      INTERNAL_PORT: 9090,
      LOG_LEVEL: "info",
    });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.REDIS_URL).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("refuses out-of-range connection counts and bad URLs, by name", () => {
    expect(failure({ DATABASE_MAX_CONNECTIONS: "0" }, serviceBaseShape)).toContain("DATABASE_MAX_CONNECTIONS");
    expect(failure({ DATABASE_MAX_CONNECTIONS: "201" }, serviceBaseShape)).toContain("DATABASE_MAX_CONNECTIONS");
    expect(failure({ REDIS_URL: "//127.0.0.1:6379" }, serviceBaseShape)).toContain("REDIS_URL");
    expect(failure({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector" }, serviceBaseShape)).toContain("OTEL_EXPORTER_OTLP_ENDPOINT");
    expect(failure({ INTERNAL_PORT: "65536" }, serviceBaseShape)).toContain("INTERNAL_PORT");
  });
});

import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { EntitlementSchema } from "@cls/proto";
import { TEST_DATABASE_URL } from "../../../test/support/env.js";
import {
  AlreadyExistsError,
  ClsError,
  FailedPreconditionError,
  InvalidArgumentError,
  isDependencyUnavailable,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from "./index.js";

/** An Error carrying a Node or Postgres `code`, as drivers make them. */
function withCode(code: string, message = "boom"): Error {
  return Object.assign(new Error(message), { code });
}

describe("isDependencyUnavailable", () => {
  it("is true for network errors reaching a dependency", () => {
    for (const code of ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "EAI_AGAIN"]) {
      expect(isDependencyUnavailable(withCode(code)), code).toBe(true);
    }
  });

  it("is true for Postgres connection exceptions, shutdowns and exhausted resources", () => {
    for (const code of ["08006", "08001", "08003", "57P01", "57P02", "57P03", "53300", "53100"]) {
      expect(isDependencyUnavailable(withCode(code)), code).toBe(true);
    }
  });

  it("is true for a dropped connection recognised by its message", () => {
    expect(isDependencyUnavailable(new Error("Connection terminated unexpectedly"))).toBe(true);
    expect(isDependencyUnavailable(new Error("Connection is closed."))).toBe(true);
    expect(isDependencyUnavailable(new Error("timeout exceeded when trying to connect"))).toBe(true);
  });

  it("is false for ordinary errors, data errors and non-errors", () => {
    expect(isDependencyUnavailable(new Error("something broke"))).toBe(false);
    expect(isDependencyUnavailable(new TypeError("x is undefined"))).toBe(false);
    for (const code of ["23505", "23503", "40001", "42P01", "22P02", "57014", "ENOENT", "ERR_INVALID_ARG_TYPE"]) {
      expect(isDependencyUnavailable(withCode(code)), code).toBe(false);
    }
    expect(isDependencyUnavailable(withCode("", "plain"))).toBe(false);
    expect(isDependencyUnavailable(Object.assign(new Error("numeric code"), { code: 8006 }))).toBe(false);
    expect(isDependencyUnavailable("ECONNREFUSED")).toBe(false);
    expect(isDependencyUnavailable(undefined)).toBe(false);
    expect(isDependencyUnavailable(null)).toBe(false);
  });

  it("is true for the error pg gives when Postgres refuses the connection", async () => {
    const client = new pg.Client({ host: "127.0.0.1", port: 1, user: "postgres", connectionTimeoutMillis: 2_000 });
    const error = await client.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    await client.end().catch(() => {});
    expect(error).toBeInstanceOf(Error);
    expect((error as { code?: string }).code).toBe("ECONNREFUSED");
    expect(isDependencyUnavailable(error)).toBe(true);
  });

  it("is true for the error pg gives when Postgres terminates the session (57P01)", async () => {
    const victim = new pg.Client({ connectionString: TEST_DATABASE_URL });
    const killer = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await victim.connect();
    await killer.connect();
    victim.on("error", () => {});
    try {
      const { rows } = await victim.query<{ pid: number }>("select pg_backend_pid() as pid");
      const running = victim.query("select pg_sleep(30)").then(
        () => undefined,
        (e: unknown) => e,
      );
      // Wait until the sleep is actually running, then terminate that backend.
      for (let i = 0; i < 100; i++) {
        const { rows: active } = await killer.query("select 1 from pg_stat_activity where pid = $1 and query like 'select pg_sleep%'", [rows[0]!.pid]);
        if (active.length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await killer.query("select pg_terminate_backend($1)", [rows[0]!.pid]);
      const error = await running;
      expect(error).toBeInstanceOf(Error);
      expect(isDependencyUnavailable(error)).toBe(true);
    } finally {
      await victim.end().catch(() => {});
      await killer.end();
    }
  });

  it("is false for a real Postgres constraint violation", async () => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      await client.query("create temporary table t (id int primary key)");
      await client.query("insert into t values (1)");
      const error = await client.query("insert into t values (1)").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((error as { code?: string }).code).toBe("23505");
      expect(isDependencyUnavailable(error)).toBe(false);
    } finally {
      await client.end();
    }
  });
});

describe("ClsError and its subclasses", () => {
  it("carry the Connect code and a message the caller can act on", () => {
    const cases: Array<[ClsError, Code, string, string]> = [
      [new InvalidArgumentError("pool_id", "is required"), Code.InvalidArgument, "pool_id: is required", "InvalidArgumentError"],
      [new NotFoundError("pool pool_1"), Code.NotFound, "pool pool_1 not found", "NotFoundError"],
      [new PermissionDeniedError("server is revoked"), Code.PermissionDenied, "server is revoked", "PermissionDeniedError"],
      [new UnauthenticatedError("token expired"), Code.Unauthenticated, "token expired", "UnauthenticatedError"],
      [new AlreadyExistsError("enrollment code already used"), Code.AlreadyExists, "enrollment code already used", "AlreadyExistsError"],
      [new FailedPreconditionError("firmware too old"), Code.FailedPrecondition, "firmware too old", "FailedPreconditionError"],
      [new ResourceExhaustedError("no free licence"), Code.ResourceExhausted, "no free licence", "ResourceExhaustedError"],
      [new UnavailableError("database down"), Code.Unavailable, "database down", "UnavailableError"],
    ];
    for (const [error, code, message, name] of cases) {
      expect(error).toBeInstanceOf(ClsError);
      expect(error).toBeInstanceOf(Error);
      expect(error.code).toBe(code);
      expect(error.message).toBe(message);
      expect(error.name).toBe(name);
      expect(error.details).toEqual([]);
      expect(isDependencyUnavailable(error)).toBe(false);
    }
  });

  it("keeps details for the caller", () => {
    const detail = { desc: EntitlementSchema, value: create(EntitlementSchema, { licenceType: "edgevis-camera", total: 2, used: 2 }) };
    const error = new ResourceExhaustedError("no free licence", [detail]);
    expect(error.details).toEqual([detail]);
    expect(new FailedPreconditionError("pool expired", [detail]).details).toHaveLength(1);
  });
});

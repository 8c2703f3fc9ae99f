import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from "@cls/errors";
import { EntitlementSchema, PoolService } from "@cls/proto";
import { errorInterceptor, toConnectError } from "./error-interceptor.js";

/** A logger that keeps its JSON lines for the test to read. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** A PoolService whose ListPools throws `thrown`, behind the error interceptor, over an in-memory Connect transport. */
function clientThrowing(thrown: unknown) {
  const { logger, lines } = capturingLogger();
  const transport = createRouterTransport(
    ({ service }) => {
      service(PoolService, {
        listPools() {
          throw thrown;
        },
      });
    },
    { router: { interceptors: [errorInterceptor(logger)] } },
  );
  return { client: createClient(PoolService, transport), lines };
}

async function callError(thrown: unknown) {
  const { client, lines } = clientThrowing(thrown);
  const error = await client.listPools({}).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return { error: error as ConnectError, lines };
}

describe("error interceptor", () => {
  it("maps each ClsError to its code, keeping the message", async () => {
    const cases: Array<[Error, Code, string]> = [
      [new InvalidArgumentError("pool_id", "is required"), Code.InvalidArgument, "pool_id: is required"],
      [new NotFoundError("pool pool_1"), Code.NotFound, "pool pool_1 not found"],
      [new PermissionDeniedError("server is revoked"), Code.PermissionDenied, "server is revoked"],
      [new UnauthenticatedError("access token expired"), Code.Unauthenticated, "access token expired"],
      [new AlreadyExistsError("enrollment code already used"), Code.AlreadyExists, "enrollment code already used"],
      [new FailedPreconditionError("firmware 7.4 is not supported; the minimum is 8.0"), Code.FailedPrecondition, "firmware 7.4 is not supported; the minimum is 8.0"],
      [new ResourceExhaustedError("no free edgevis-camera licence"), Code.ResourceExhausted, "no free edgevis-camera licence"],
      [new UnavailableError("pool service unavailable"), Code.Unavailable, "pool service unavailable"],
    ];
    for (const [thrown, code, message] of cases) {
      const { error, lines } = await callError(thrown);
      expect(error.code, thrown.name).toBe(code);
      expect(error.rawMessage).toBe(message);
      // Refusals are expected outcomes, not errors to log.
      expect(lines.filter((line) => line.level === 50)).toEqual([]);
    }
  });

  it("sends a ClsError's details to the caller", async () => {
    const detail = create(EntitlementSchema, { licenceType: "edgevis-camera", total: 5, used: 5, free: 0 });
    const { error } = await callError(new ResourceExhaustedError("no free licence", [{ desc: EntitlementSchema, value: detail }]));
    expect(error.code).toBe(Code.ResourceExhausted);
    const details = error.findDetails(EntitlementSchema);
    expect(details).toHaveLength(1);
    expect(details[0]).toMatchObject({ licenceType: "edgevis-camera", total: 5, used: 5, free: 0 });
  });

  it("passes a ConnectError through unchanged", async () => {
    const { error } = await callError(new ConnectError("deadline", Code.DeadlineExceeded));
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(error.rawMessage).toBe("deadline");
  });

  it("maps an unreachable dependency to unavailable without its details", async () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 10.1.2.3:5432"), { code: "ECONNREFUSED" });
    const { error, lines } = await callError(refused);
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe("a dependency is unavailable; retry shortly");
    expect(error.message).not.toContain("10.1.2.3");
    expect(lines.some((line) => line.msg === "dependency unavailable" && line.method === "ListPools")).toBe(true);

    const terminated = Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" });
    expect((await callError(terminated)).error.code).toBe(Code.Unavailable);
    const lost = Object.assign(new Error("connection failure"), { code: "08006" });
    expect((await callError(lost)).error.code).toBe(Code.Unavailable);
  });

  it("maps any other error to internal, logging the cause and never sending it", async () => {
    const bug = new TypeError("cannot read properties of undefined (reading 'secret_column') for acc_other");
    const { error, lines } = await callError(bug);
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("internal error");
    expect(error.message).not.toContain("secret_column");
    expect(error.details).toEqual([]);
    const logged = lines.find((line) => line.msg === "internal error");
    expect(logged).toBeDefined();
    expect(logged!.level).toBe(50);
    expect(JSON.stringify(logged)).toContain("secret_column");
  });

  it("maps a thrown non-Error value to internal", async () => {
    const { error } = await callError("a string, thrown");
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("internal error");
  });
});

describe("toConnectError", () => {
  it("maps directly, as the interceptor does", () => {
    const logger = pino({ level: "silent" });
    expect(toConnectError(new NotFoundError("server srv_1"), logger, "m").code).toBe(Code.NotFound);
    expect(toConnectError(Object.assign(new Error("x"), { code: "ETIMEDOUT" }), logger, "m").code).toBe(Code.Unavailable);
    const internal = toConnectError(new Error("password=hunter2"), logger, "m");
    expect(internal.code).toBe(Code.Internal);
    expect(internal.rawMessage).toBe("internal error");
    const original = new ConnectError("kept", Code.Aborted);
    expect(toConnectError(original, logger, "m")).toBe(original);
  });
});

import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status, PoolAdminService, PoolService } from "@cls/proto";
import { registerHealth, type ReadinessCheck } from "./health.js";

function healthClient(checks: ReadinessCheck[], services = [PoolService.typeName, PoolAdminService.typeName]) {
  return createClient(
    Health,
    createRouterTransport((router) => registerHealth(router, services, checks)),
  );
}

const pass: ReadinessCheck = async () => true;
const fail: ReadinessCheck = async () => false;
const crash: ReadinessCheck = async () => {
  throw new Error("connect ECONNREFUSED");
};

describe("health", () => {
  it("answers SERVING for the empty service (liveness), whatever the dependencies say", async () => {
    expect((await healthClient([pass]).check({ service: "" })).status).toBe(Status.SERVING);
    expect((await healthClient([fail, crash]).check({ service: "" })).status).toBe(Status.SERVING);
  });

  it("answers SERVING for a served service when every check passes", async () => {
    const client = healthClient([pass, pass]);
    expect((await client.check({ service: PoolService.typeName })).status).toBe(Status.SERVING);
    expect((await client.check({ service: PoolAdminService.typeName })).status).toBe(Status.SERVING);
    expect((await healthClient([]).check({ service: PoolService.typeName })).status).toBe(Status.SERVING);
  });

  it("answers NOT_SERVING when any check fails or throws", async () => {
    expect((await healthClient([pass, fail]).check({ service: PoolService.typeName })).status).toBe(Status.NOT_SERVING);
    expect((await healthClient([crash, pass]).check({ service: PoolService.typeName })).status).toBe(Status.NOT_SERVING);
  });

  it("runs the checks on every call, so readiness follows the dependencies", async () => {
    let up = true;
    const client = healthClient([async () => up]);
    expect((await client.check({ service: PoolService.typeName })).status).toBe(Status.SERVING);
    up = false;
    expect((await client.check({ service: PoolService.typeName })).status).toBe(Status.NOT_SERVING);
    up = true;
    expect((await client.check({ service: PoolService.typeName })).status).toBe(Status.SERVING);
  });

  it("answers SERVICE_UNKNOWN for a service not served here, without running checks", async () => {
    let ran = 0;
    const client = healthClient([async () => (ran++, true)]);
    expect((await client.check({ service: "cls.nothing.v1.Nope" })).status).toBe(Status.SERVICE_UNKNOWN);
    expect((await client.check({ service: "grpc.health.v1.Health" })).status).toBe(Status.SERVICE_UNKNOWN);
    expect(ran).toBe(0);
  });

  it("refuses Watch as unimplemented", async () => {
    const client = healthClient([pass]);
    const error = await (async () => {
      try {
        for await (const _ of client.watch({ service: "" })) {
          // no messages expected
        }
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unimplemented);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "@cls/db";
import { acquireContextsQuery, loadAcquireContexts } from "./acquire-context.repository.js";
import { CAMERA, createAllocationTestContext, HARDWARE_MODEL, type AllocationTestContext } from "./test-context.js";

let t: AllocationTestContext;
beforeAll(async () => {
  t = await createAllocationTestContext();
});
afterAll(async () => {
  await t?.close();
});

describe("the acquire pre-read of several calls in one query (SPEC L7)", () => {
  it("has the same text for any number of calls, so one prepared statement serves every batch", () => {
    const one = acquireContextsQuery([{ serverId: "srv-1", encoderId: "enc-1", cameraId: "cam-1" }]).compile(t.db);
    const three = acquireContextsQuery(["a", "b", "c"].map((c) => ({ serverId: `srv-${c}`, encoderId: `enc-${c}`, cameraId: `cam-${c}` }))).compile(t.db);

    expect(three.sql).toBe(one.sql);
    expect(three.parameters).toEqual([
      ["srv-a", "srv-b", "srv-c"],
      ["enc-a", "enc-b", "enc-c"],
      ["cam-a", "cam-b", "cam-c"],
    ]);
  });

  it("answers one context per call, in order, including unknown servers, unregistered encoders and repeats", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 2 }));
    await t.registered(server, "enc-1");
    await t.registered(server, "old-1", { firmware: "8.4" });
    const held = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-held" });
    const serverId = server.caller.serverId;

    const contexts = await loadAcquireContexts(t.db, [
      { serverId, encoderId: "enc-1", cameraId: "cam-held" },
      { serverId: newId("srv"), encoderId: "enc-1", cameraId: "cam-held" },
      { serverId, encoderId: "ghost", cameraId: "cam-1" },
      { serverId, encoderId: "enc-1", cameraId: "cam-new" },
      { serverId, encoderId: "old-1", cameraId: "cam-1" },
      { serverId, encoderId: "enc-1", cameraId: "cam-held" },
    ]);

    const bound = { server: { account_id: server.pool.accountId, pool_id: server.pool.poolId, state: "active" }, poolExpiresAt: server.pool.expiresAt };
    const poolEncoder = { ...bound, encoder: { licence_kind: "pool", model: HARDWARE_MODEL }, licenceType: CAMERA };
    expect(contexts).toHaveLength(6);
    expect(contexts[0]).toMatchObject({ ...poolEncoder, existing: { allocation_id: held.allocation!.allocationId, camera_id: "cam-held", state: "active" } });
    expect(contexts[0]!.existing!.acquired_at).toBeInstanceOf(Date);
    expect(contexts[1]).toEqual({ server: undefined, encoder: undefined, licenceType: undefined, poolExpiresAt: undefined, existing: undefined });
    expect(contexts[2]).toMatchObject({ ...bound, encoder: undefined, licenceType: undefined, existing: undefined });
    expect(contexts[3]).toMatchObject({ ...poolEncoder, existing: undefined });
    expect(contexts[4]).toMatchObject({ ...bound, encoder: { licence_kind: "legacy", model: HARDWARE_MODEL }, existing: undefined });
    expect(contexts[5]).toEqual(contexts[0]);
  });
});

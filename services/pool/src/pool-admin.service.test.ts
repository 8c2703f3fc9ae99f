import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS } from "@cls/clock";
import { newId } from "@cls/db";
import { EncoderKind } from "@cls/proto";
import { createAllocationSync } from "./allocation-sync.js";
import { createPoolTestContext, staff, type PoolTestContext } from "./test-context.js";

let t: PoolTestContext;
let camera: string;
beforeAll(async () => {
  t = await createPoolTestContext();
  camera = await t.newLicenceType("edgevis-camera");
});
afterAll(async () => {
  await t?.close();
});

async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(ConnectError);
  return outcome as ConnectError;
}

/** Row counts of every table, to show a refused request wrote nothing. */
async function tableCounts() {
  return {
    accounts: await t.count("accounts"),
    licence_types: await t.count("licence_types"),
    encoder_models: await t.count("encoder_models"),
    pools: await t.count("pools"),
    pool_entitlements: await t.count("pool_entitlements"),
    audit: await t.count("audit"),
    outbox: await t.count("outbox"),
  };
}

const inDays = (days: number) => timestampFromDate(new Date(t.clock.now().getTime() + days * DAY_MS));
const pushesFor = (poolId: string) => t.neighbours.applyEntitlementCalls.filter((call) => call.poolId === poolId);

describe("CreateAccount", () => {
  it("creates an account and audits it with the actor (SPEC L16)", async () => {
    const { account } = await t.admin.createAccount({ name: "  Acme Security  " }, staff);

    expect(account?.accountId).toMatch(/^acc_[0-9a-f]{32}$/);
    expect(account?.name).toBe("Acme Security");
    const { entries } = await t.admin.listAudit({ accountId: account!.accountId });
    expect(entries).toMatchObject([{ action: "account.created", actor: "staff:alice@example.com", subject: account!.accountId }]);
  });

  it("refuses a blank or over-long name with invalid_argument naming the field, writing nothing", async () => {
    const before = await tableCounts();
    for (const name of ["", "   ", "x".repeat(201), "line\nbreak"]) {
      const error = await rejection(t.admin.createAccount({ name }, staff));
      expect([error.code, error.rawMessage.startsWith("name: ")]).toEqual([Code.InvalidArgument, true]);
    }
    expect(await tableCounts()).toEqual(before);
  });
});

describe("licence types are data (SPEC L1)", () => {
  it("any new slug works at once in a pool and in the catalogue, with no code change", async () => {
    const thermal = await t.newLicenceType("thermal-camera");
    const accountId = await t.newAccount();

    const { licenceTypes } = await t.admin.listLicenceTypes({});
    expect(licenceTypes.map((type) => type.licenceType)).toContain(thermal);
    const { model } = await t.admin.putEncoderModel({ model: { model: "thermo-x1", licenceType: thermal, kind: EncoderKind.HARDWARE, minV9Version: "9.2" } }, staff);
    expect(model?.licenceType).toBe(thermal);
    const poolId = await t.createPool(accountId, { [thermal]: 7 });
    const { pool } = await t.admin.getPool({ poolId });
    expect(pool?.entitlements).toMatchObject([{ licenceType: thermal, total: 7 }]);
    expect(pushesFor(poolId)[0]!.counts).toEqual({ [thermal]: 7 });
  });

  it("refuses a duplicate with already_exists and a malformed slug with invalid_argument", async () => {
    const before = await tableCounts();
    expect((await rejection(t.admin.createLicenceType({ licenceType: camera, description: "again" }, staff))).code).toBe(Code.AlreadyExists);
    for (const licenceType of ["", "Edgevis Camera", "-leading-dash", "x".repeat(65)]) {
      const error = await rejection(t.admin.createLicenceType({ licenceType, description: "" }, staff));
      expect([error.code, error.rawMessage.startsWith("licence_type: ")]).toEqual([Code.InvalidArgument, true]);
    }
    expect(await tableCounts()).toEqual(before);
  });
});

describe("PutEncoderModel (SPEC L1a)", () => {
  it("stores the model in lowercase, defaults the minimum v9 version per kind, and pushes it to allocation", async () => {
    const evvr = await t.newLicenceType("evvr-camera");
    const hardware = await t.admin.putEncoderModel({ model: { model: "HD-IP470", licenceType: camera, kind: EncoderKind.HARDWARE, minV9Version: "" } }, staff);
    const container = await t.admin.putEncoderModel({ model: { model: "evvr-box", licenceType: evvr, kind: EncoderKind.CONTAINER, minV9Version: "" } }, staff);

    expect(hardware.model).toMatchObject({ model: "hd-ip470", minV9Version: "9.2", kind: EncoderKind.HARDWARE });
    expect(container.model).toMatchObject({ model: "evvr-box", minV9Version: "9.0", kind: EncoderKind.CONTAINER });
    const pushed = t.neighbours.applyEncoderModelCalls.map((call) => call.model);
    expect(pushed).toContainEqual(expect.objectContaining({ model: "hd-ip470", licenceType: camera, kind: EncoderKind.HARDWARE, minV9Version: "9.2" }));
    expect(pushed).toContainEqual(expect.objectContaining({ model: "evvr-box", licenceType: evvr, kind: EncoderKind.CONTAINER, minV9Version: "9.0" }));
    const rows = await t.db.selectFrom("encoder_models").selectAll().where("model", "in", ["hd-ip470", "evvr-box"]).execute();
    expect(rows.every((row) => row.synced)).toBe(true);
    const { models } = await t.admin.listEncoderModels({});
    expect(models.map((m) => m.model)).toEqual(expect.arrayContaining(["hd-ip470", "evvr-box"]));
  });

  it("refuses a model whose licence type is unknown with failed_precondition, writing nothing", async () => {
    const before = await tableCounts();
    const error = await rejection(
      t.admin.putEncoderModel({ model: { model: "hd-ip200", licenceType: "no-such-type", kind: EncoderKind.HARDWARE, minV9Version: "9.2" } }, staff),
    );
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("no-such-type");
    expect(await tableCounts()).toEqual(before);
  });

  it("refuses an unspecified kind with invalid_argument naming model.kind, writing nothing", async () => {
    const before = await tableCounts();
    const error = await rejection(t.admin.putEncoderModel({ model: { model: "hd-ip200", licenceType: camera, kind: EncoderKind.UNSPECIFIED, minV9Version: "9.2" } }, staff));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/^model\.kind: /);
    expect(await tableCounts()).toEqual(before);
  });

  it.each(["8.0", "9.x", "10.0", "95.0", "9.2.1.1"])("refuses %j as a minimum v9 version with invalid_argument", async (minV9Version) => {
    const before = await tableCounts();
    const error = await rejection(t.admin.putEncoderModel({ model: { model: "hd-ip200", licenceType: camera, kind: EncoderKind.HARDWARE, minV9Version } }, staff));
    expect([error.code, error.rawMessage.startsWith("model.min_v9_version: ")]).toEqual([Code.InvalidArgument, true]);
    expect(await tableCounts()).toEqual(before);
  });

  it("refuses a missing model or a malformed name with invalid_argument naming the field", async () => {
    expect(await rejection(t.admin.putEncoderModel({}, staff))).toMatchObject({ code: Code.InvalidArgument, rawMessage: "model: is required" });
    const error = await rejection(t.admin.putEncoderModel({ model: { model: "hd ip200", licenceType: camera, kind: EncoderKind.HARDWARE } }, staff));
    expect([error.code, error.rawMessage.startsWith("model.model: ")]).toEqual([Code.InvalidArgument, true]);
  });
});

describe("CreatePool (SPEC L1, L2)", () => {
  it("creates a pool with counts per type and one expiry, audits it, and pushes version 1 to allocation", async () => {
    const evvr = await t.newLicenceType("evvr-camera");
    const accountId = await t.newAccount();
    const expiresAt = inDays(180);

    const { pool } = await t.admin.createPool({ accountId, name: "2030 purchase", expiresAt, counts: { [camera]: 10, [evvr]: 4 } }, staff);

    expect(pool).toMatchObject({ accountId, name: "2030 purchase", version: 1n });
    expect(pool!.poolId).toMatch(/^pool_[0-9a-f]{32}$/);
    expect(pool!.expiresAt).toEqual(expiresAt);
    expect(pool!.entitlements.map((e) => [e.licenceType, e.total, e.used, e.free]).sort()).toEqual(
      [
        [camera, 10, 0, 10],
        [evvr, 4, 0, 4],
      ].sort(),
    );
    expect(pushesFor(pool!.poolId)).toMatchObject([{ accountId, version: 1n, counts: { [camera]: 10, [evvr]: 4 }, expiresAt }]);
    const row = await t.db.selectFrom("pools").selectAll().where("pool_id", "=", pool!.poolId).executeTakeFirstOrThrow();
    expect([row.version, row.synced_version]).toEqual([1, 1]);
    const { entries } = await t.admin.listAudit({ accountId });
    expect(entries.map((e) => [e.action, e.actor])).toContainEqual(["pool.created", "staff:alice@example.com"]);
  });

  it("lets an account hold several pools with different expiries (SPEC L2)", async () => {
    const accountId = await t.newAccount();
    const later = await t.createPool(accountId, { [camera]: 5 }, { expiresInDays: 400 });
    const sooner = await t.createPool(accountId, { [camera]: 2 }, { expiresInDays: 30 });

    const { pools } = await t.admin.listAccountPools({ accountId });

    expect(pools.map((p) => p.poolId)).toEqual([sooner, later]);
  });

  it("refuses a licence type that is not in the catalogue with failed_precondition, writing nothing", async () => {
    const accountId = await t.newAccount();
    const before = await tableCounts();
    const error = await rejection(t.admin.createPool({ accountId, name: "p", expiresAt: inDays(30), counts: { [camera]: 1, "made-up-type": 3 } }, staff));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("made-up-type");
    expect(await tableCounts()).toEqual(before);
  });

  it("refuses an unknown account with not_found, writing nothing", async () => {
    const before = await tableCounts();
    expect((await rejection(t.admin.createPool({ accountId: newId("acc"), name: "p", expiresAt: inDays(30), counts: { [camera]: 1 } }, staff))).code).toBe(
      Code.NotFound,
    );
    expect(await tableCounts()).toEqual(before);
  });

  it("refuses bad input with invalid_argument naming the field, writing and pushing nothing", async () => {
    const accountId = await t.newAccount();
    const good = { accountId, name: "p", expiresAt: inDays(30), counts: { [camera]: 1 } };
    const cases: Array<[Partial<typeof good> & Record<string, unknown>, string]> = [
      [{ accountId: "" }, "account_id"],
      [{ accountId: newId("pool") }, "account_id"],
      [{ name: "" }, "name"],
      [{ expiresAt: undefined }, "expires_at"],
      [{ expiresAt: timestampFromDate(new Date("1969-12-31T00:00:00Z")) }, "expires_at"],
      [{ counts: {} }, "counts"],
      [{ counts: { [camera]: -1 } }, `counts[${camera}]`],
      [{ counts: { [camera]: 1_000_001 } }, `counts[${camera}]`],
      [{ counts: { "Bad Type": 1 } }, "counts[Bad Type]"],
    ];
    const before = await tableCounts();
    const pushesBefore = t.neighbours.applyEntitlementCalls.length;
    for (const [change, field] of cases) {
      const error = await rejection(t.admin.createPool({ ...good, ...change }, staff));
      expect(error.code, field).toBe(Code.InvalidArgument);
      expect(error.rawMessage.startsWith(`${field}: `), error.rawMessage).toBe(true);
    }
    expect(await tableCounts()).toEqual(before);
    expect(t.neighbours.applyEntitlementCalls).toHaveLength(pushesBefore);
  });

  it("succeeds while allocation is down, so no retry can make a second pool; the background sync delivers it later (SPEC L4)", async () => {
    const accountId = await t.newAccount();
    const request = { accountId, name: "created while allocation is down", expiresAt: inDays(30), counts: { [camera]: 1 } };
    t.neighbours.failAllocation = new ConnectError("allocation is down", Code.Unavailable);
    let poolId: string;
    try {
      poolId = (await t.admin.createPool(request, staff)).pool!.poolId;
    } finally {
      t.neighbours.failAllocation = undefined;
    }
    expect((await t.admin.listAccountPools({ accountId })).pools.map((p) => p.poolId)).toEqual([poolId]);
    expect(pushesFor(poolId)).toEqual([]);

    const sync = createAllocationSync({ db: t.db, allocation: t.allocationAdmin, logger: t.logger, intervalMs: 3_600_000 });
    try {
      await sync.pushPending();
    } finally {
      sync.stop();
    }

    expect(pushesFor(poolId).map((call) => call.version)).toEqual([1n]);
  });
});

describe("ChangeEntitlement (SPEC L4, L16)", () => {
  it("bumps the version, keeps unnamed counts, moves the expiry, pushes it, audits and records an event", async () => {
    const evvr = await t.newLicenceType("evvr-camera");
    const accountId = await t.newAccount();
    const poolId = await t.createPool(accountId, { [camera]: 10, [evvr]: 4 }, { expiresInDays: 100 });
    const newExpiry = inDays(465);
    t.clock.advance(60_000);

    const { pool } = await t.admin.changeEntitlement({ poolId, counts: { [camera]: 6 }, expiresAt: newExpiry }, { headers: { "x-cls-actor": "staff:bob@example.com" } });

    expect(pool?.version).toBe(2n);
    expect(pool?.expiresAt).toEqual(newExpiry);
    expect(Object.fromEntries(pool!.entitlements.map((e) => [e.licenceType, e.total]))).toEqual({ [camera]: 6, [evvr]: 4 });
    expect(pushesFor(poolId).map((call) => [call.version, call.counts, timestampDate(call.expiresAt!).getTime()])).toEqual([
      [1n, { [camera]: 10, [evvr]: 4 }, expect.any(Number)],
      [2n, { [camera]: 6, [evvr]: 4 }, timestampDate(newExpiry).getTime()],
    ]);
    const stored = await t.admin.getPool({ poolId });
    expect(stored.pool).toEqual(pool);
    const { entries } = await t.admin.listAudit({ accountId });
    const change = entries.find((e) => e.action === "entitlement.changed");
    expect(change).toMatchObject({ actor: "staff:bob@example.com", subject: poolId, accountId });
    expect(JSON.parse(change!.detailJson)).toMatchObject({
      version: 2,
      counts_before: { [camera]: 10, [evvr]: 4 },
      counts_after: { [camera]: 6, [evvr]: 4 },
      expires_at_after: timestampDate(newExpiry).toISOString(),
    });
    const events = await t.db.selectFrom("outbox").selectAll().where("account_id", "=", accountId).where("type", "=", "entitlement.changed").execute();
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ pool_id: poolId, version: 2 });
  });

  it("changes only the expiry when no count is named, and adds a newly named type", async () => {
    const thermal = await t.newLicenceType("thermal");
    const accountId = await t.newAccount();
    const poolId = await t.createPool(accountId, { [camera]: 3 });

    await t.admin.changeEntitlement({ poolId, expiresAt: inDays(10) }, staff);
    const { pool } = await t.admin.changeEntitlement({ poolId, counts: { [thermal]: 2 } }, staff);

    expect(pool?.version).toBe(3n);
    expect(Object.fromEntries(pool!.entitlements.map((e) => [e.licenceType, e.total]))).toEqual({ [camera]: 3, [thermal]: 2 });
    expect(timestampDate(pool!.expiresAt!).getTime()).toBe(timestampDate(inDays(10)).getTime());
    expect(pushesFor(poolId).at(-1)).toMatchObject({ version: 3n, counts: { [camera]: 3, [thermal]: 2 } });
  });

  it("records the service itself when the call came from within the process, crossing no network (SPEC L16)", async () => {
    const accountId = await t.newAccount();
    const poolId = await t.createPool(accountId, { [camera]: 3 });
    await t.admin.changeEntitlement({ poolId, counts: { [camera]: 4 } });
    const { entries } = await t.admin.listAudit({ accountId });
    expect(entries.find((e) => e.action === "entitlement.changed")?.actor).toBe("service:in-process");
  });

  it("when allocation is down: answers unavailable, keeps the change, and pushPending delivers it later (SPEC L4)", async () => {
    const accountId = await t.newAccount();
    const poolId = await t.createPool(accountId, { [camera]: 5 });
    t.neighbours.failAllocation = new ConnectError("allocation is down", Code.Unavailable);
    const sync = createAllocationSync({ db: t.db, allocation: t.allocationAdmin, logger: t.logger, intervalMs: 3_600_000 });
    try {
      const error = await rejection(t.admin.changeEntitlement({ poolId, counts: { [camera]: 8 } }, staff));
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toContain("saved");

      const saved = await t.db.selectFrom("pools").selectAll().where("pool_id", "=", poolId).executeTakeFirstOrThrow();
      expect([saved.version, saved.synced_version]).toEqual([2, 1]);
      expect((await t.admin.getPool({ poolId })).pool?.entitlements).toMatchObject([{ licenceType: camera, total: 8 }]);
      expect(pushesFor(poolId).map((call) => call.version)).toEqual([1n]);
      // Still down: a pass delivers nothing and keeps it pending.
      await expect(sync.pushPending()).rejects.toBeInstanceOf(ConnectError);
      t.neighbours.failAllocation = undefined;

      await sync.pushPending();

      expect(pushesFor(poolId).map((call) => [call.version, call.counts])).toEqual([
        [1n, { [camera]: 5 }],
        [2n, { [camera]: 8 }],
      ]);
      const synced = await t.db.selectFrom("pools").selectAll().where("pool_id", "=", poolId).executeTakeFirstOrThrow();
      expect(synced.synced_version).toBe(2);
    } finally {
      t.neighbours.failAllocation = undefined;
      sync.stop();
    }
  });

  it("refuses bad input with the right code, changing nothing", async () => {
    const accountId = await t.newAccount();
    const poolId = await t.createPool(accountId, { [camera]: 5 });
    const before = await tableCounts();
    const pushesBefore = pushesFor(poolId).length;

    expect(await rejection(t.admin.changeEntitlement({ poolId }, staff))).toMatchObject({ code: Code.InvalidArgument, rawMessage: expect.stringMatching(/^counts: /) });
    expect(await rejection(t.admin.changeEntitlement({ poolId, counts: { [camera]: -2 } }, staff))).toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: expect.stringMatching(new RegExp(`^counts\\[${camera}\\]: `)),
    });
    expect(await rejection(t.admin.changeEntitlement({ poolId: "", counts: { [camera]: 1 } }, staff))).toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: "pool_id: is required",
    });
    expect(await rejection(t.admin.changeEntitlement({ poolId, counts: { "no-such-type": 1 } }, staff))).toMatchObject({ code: Code.FailedPrecondition });
    expect(await rejection(t.admin.changeEntitlement({ poolId: newId("pool"), counts: { [camera]: 1 } }, staff))).toMatchObject({ code: Code.NotFound });

    expect(await tableCounts()).toEqual(before);
    expect((await t.admin.getPool({ poolId })).pool).toMatchObject({ version: 1n, entitlements: [{ licenceType: camera, total: 5 }] });
    expect(pushesFor(poolId)).toHaveLength(pushesBefore);
  });
});

describe("GetPool and ListAudit", () => {
  it("answers not_found for an unknown pool and invalid_argument for a malformed id", async () => {
    expect((await rejection(t.admin.getPool({ poolId: newId("pool") }))).code).toBe(Code.NotFound);
    expect(await rejection(t.admin.getPool({ poolId: "pool_x" }))).toMatchObject({ code: Code.InvalidArgument, rawMessage: "pool_id: must be a pool_ id" });
  });

  it("lists one account's entries newest first, within the limit", async () => {
    const accountId = await t.newAccount();
    t.clock.advance(1_000);
    const poolId = await t.createPool(accountId, { [camera]: 1 });
    t.clock.advance(1_000);
    await t.admin.changeEntitlement({ poolId, counts: { [camera]: 2 } }, staff);

    const { entries } = await t.admin.listAudit({ accountId });
    expect(entries.map((e) => e.action)).toEqual(["entitlement.changed", "pool.created", "account.created"]);
    expect(entries.every((e) => e.accountId === accountId)).toBe(true);
    expect((await t.admin.listAudit({ accountId, limit: 1 })).entries).toHaveLength(1);
    expect((await rejection(t.admin.listAudit({ accountId, limit: 1001 }))).code).toBe(Code.InvalidArgument);
  });
});

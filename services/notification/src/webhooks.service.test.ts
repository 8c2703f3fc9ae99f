import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId, sql } from "@cls/db";
import { anEvent } from "./events.fixture.js";
import { startNotificationHarness, type NotificationHarness } from "./webhook.fixture.js";

// SPEC L15: customers manage the account's webhook endpoints and see the dead-letter list.
// SPEC L13: no IP address is stored, so a target must be named by a host name.

let strict: NotificationHarness;
let dev: NotificationHarness;

beforeAll(async () => {
  [strict, dev] = await Promise.all([startNotificationHarness(), startNotificationHarness({ allowPrivateTargets: true })]);
});

afterAll(async () => {
  await Promise.all([strict?.close(), dev?.close()]);
});

async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

async function webhookRows(h: NotificationHarness, accountId: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from notification.webhooks where account_id = ${accountId}`.execute(h.database.handle.root);
  return rows[0]!.n;
}

describe("CreateWebhook", () => {
  it("returns the webhook and a signing secret shown once; ListWebhooks shows it without the secret", async () => {
    const accountId = newId("acc");
    const customer = await strict.asCustomer(accountId);
    const created = await customer.createWebhook({ url: "https://Hooks.Example.com/cls?x=1#frag", eventTypes: ["licence.revoked", "pool.expired", "licence.revoked"] });
    expect(created.webhook!.webhookId).toMatch(/^whk_[0-9a-f]{32}$/);
    expect(created.webhook!.url).toBe("https://hooks.example.com/cls?x=1");
    expect(created.webhook!.eventTypes).toEqual(["licence.revoked", "pool.expired"]);
    expect(created.webhook!.createdAt!.seconds).toBe(BigInt(Math.floor(strict.clock.now().getTime() / 1000)));
    expect(created.signingSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    strict.clock.advance(1_000);
    const second = await customer.createWebhook({ url: "https://hooks.example.com/all" });
    expect(second.signingSecret).not.toBe(created.signingSecret);
    expect(second.webhook!.eventTypes).toEqual([]);

    const { webhooks } = await customer.listWebhooks({});
    expect(webhooks.map((w) => w.webhookId)).toEqual([created.webhook!.webhookId, second.webhook!.webhookId]);
    expect(webhooks[0]).toEqual(created.webhook);
    expect(JSON.stringify(webhooks, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).not.toContain(created.signingSecret);
  });

  const refusedEverywhere: Array<[string, string, string]> = [
    ["an IPv4 literal", "https://203.0.113.7/hook", "url: must name a host, not an IP address"],
    ["an IPv4 loopback literal", "https://127.0.0.1:8443/hook", "url: must name a host, not an IP address"],
    ["an IPv4 address written as one number", "https://2130706433/hook", "url: must name a host, not an IP address"],
    ["an IPv4 address in hex", "https://0x7f.1/hook", "url: must name a host, not an IP address"],
    ["an IPv6 literal", "https://[2001:db8::1]/hook", "url: must name a host, not an IP address"],
    ["the IPv6 loopback", "https://[::1]:8443/hook", "url: must name a host, not an IP address"],
    ["an IPv4-mapped IPv6 literal", "https://[::ffff:127.0.0.1]/hook", "url: must name a host, not an IP address"],
    ["a URL longer than 2,000 characters", `https://hooks.example.com/${"a".repeat(1975)}`, "url: must be at most 2000 characters"],
    ["no URL", "", "url: is required"],
    ["not a URL", "hooks.example.com/cls", "url: must be an absolute URL such as https://hooks.example.com/cls"],
    ["another scheme", "ftp://hooks.example.com/cls", "url: must use https"],
    ["credentials in the URL", "https://user:pass@hooks.example.com/cls", "url: must not contain a user name or password"],
  ];

  const refusedInProduction: Array<[string, string, string]> = [
    ["http", "http://hooks.example.com/cls", "url: must use https"],
    ["localhost", "https://localhost:8443/hook", "url: must name a public host, not localhost or a private network name"],
    ["a .local name", "https://printer.local/hook", "url: must name a public host, not localhost or a private network name"],
    ["an .internal name", "https://metadata.google.internal/computeMetadata", "url: must name a public host, not localhost or a private network name"],
    ["a single-label name", "https://intranet/hook", "url: must name a public host, not localhost or a private network name"],
    ["localhost with a trailing dot", "https://localhost./hook", "url: must name a public host, not localhost or a private network name"],
  ];

  it.each([...refusedEverywhere, ...refusedInProduction])("refuses %s and stores nothing", async (_name, url, message) => {
    const accountId = newId("acc");
    const error = await rejection((await strict.asCustomer(accountId)).createWebhook({ url }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe(message);
    expect(await webhookRows(strict, accountId)).toBe(0);
  });

  it.each(refusedEverywhere)("refuses %s even when private targets are allowed", async (_name, url, message) => {
    const error = await rejection((await dev.asCustomer(newId("acc"))).createWebhook({ url }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe(message);
  });

  it("accepts http and private host names when private targets are allowed (development and tests)", async () => {
    const customer = await dev.asCustomer(newId("acc"));
    for (const url of ["http://localhost:8080/hook", "https://localhost/hook", "http://receiver.internal/hook", "https://printer.local/x"]) {
      expect((await customer.createWebhook({ url })).webhook!.url).toBe(url);
    }
  });

  it("refuses a malformed event type, naming its index", async () => {
    const accountId = newId("acc");
    const error = await rejection((await strict.asCustomer(accountId)).createWebhook({ url: "https://hooks.example.com/", eventTypes: ["pool.expired", "Pool Expired"] }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("event_types[1]: must be 1 to 64 of a-z, 0-9, '_' or '.', starting with a letter");
    expect(await webhookRows(strict, accountId)).toBe(0);
  });

  it("allows 10 webhooks per account: the 11th is resource_exhausted until one is deleted", async () => {
    const accountId = newId("acc");
    const customer = await strict.asCustomer(accountId);
    const created = await Promise.all(Array.from({ length: 10 }, (_, i) => customer.createWebhook({ url: `https://hooks.example.com/${i}` })));
    const error = await rejection(customer.createWebhook({ url: "https://hooks.example.com/11" }));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toBe("an account may have at most 10 webhooks: delete one first");
    // Another account is not affected.
    await (await strict.asCustomer(newId("acc"))).createWebhook({ url: "https://hooks.example.com/other" });

    await customer.deleteWebhook({ webhookId: created[0]!.webhook!.webhookId });
    await customer.createWebhook({ url: "https://hooks.example.com/11" });
    expect((await customer.listWebhooks({})).webhooks).toHaveLength(10);
  });

  it("never lets racing creations pass the cap", async () => {
    const accountId = newId("acc");
    const customer = await strict.asCustomer(accountId);
    const results = await Promise.allSettled(Array.from({ length: 15 }, (_, i) => customer.createWebhook({ url: `https://hooks.example.com/${i}` })));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(10);
    expect(results.filter((r) => r.status === "rejected").every((r) => (r.reason as ConnectError).code === Code.ResourceExhausted)).toBe(true);
    expect(await webhookRows(strict, accountId)).toBe(10);
  });
});

describe("DeleteWebhook", () => {
  // SPEC L11: another account's id is not_found, worded exactly like a missing one.
  it("deletes the caller's own webhook; another account's or an unknown id is not_found", async () => {
    const mine = await strict.asCustomer(newId("acc"));
    const theirsAccount = newId("acc");
    const theirs = await strict.asCustomer(theirsAccount);
    const own = (await mine.createWebhook({ url: "https://hooks.example.com/mine" })).webhook!;
    const foreign = (await theirs.createWebhook({ url: "https://hooks.example.com/theirs" })).webhook!;

    const foreignError = await rejection(mine.deleteWebhook({ webhookId: foreign.webhookId }));
    const unknownError = await rejection(mine.deleteWebhook({ webhookId: newId("whk") }));
    expect(foreignError.code).toBe(Code.NotFound);
    expect(foreignError.rawMessage).toBe("webhook not found");
    expect(unknownError.code).toBe(Code.NotFound);
    expect(unknownError.rawMessage).toBe(foreignError.rawMessage);
    expect((await theirs.listWebhooks({})).webhooks.map((w) => w.webhookId)).toEqual([foreign.webhookId]);

    await mine.deleteWebhook({ webhookId: own.webhookId });
    expect((await mine.listWebhooks({})).webhooks).toEqual([]);
    expect((await rejection(mine.deleteWebhook({ webhookId: own.webhookId }))).code).toBe(Code.NotFound);

    const malformed = await rejection(mine.deleteWebhook({ webhookId: "whk_nope" }));
    expect(malformed.code).toBe(Code.InvalidArgument);
    expect(malformed.rawMessage).toBe("webhook_id: must be a whk_ id");
  });
});

describe("ListWebhooks and ListDeadLetters", () => {
  it("list only the caller's own account's webhooks and dead letters", async () => {
    const a = newId("acc");
    const b = newId("acc");
    const asA = await strict.asCustomer(a);
    const asB = await strict.asCustomer(b);
    await asA.createWebhook({ url: "https://a.example.com/" });
    const bHook = (await asB.createWebhook({ url: "https://b.example.com/" })).webhook!;
    await sql`insert into notification.events values (${"evt_" + "b".repeat(32)}, ${b}, 'pool.expired', now(), '{}'::jsonb, 'pool', now())`.execute(strict.database.handle.root);
    await sql`insert into notification.deliveries (delivery_id, webhook_id, event_id, account_id, state, attempts, next_attempt_at, last_error, dead_at)
              values (${newId("dlv")}, ${bHook.webhookId}, ${"evt_" + "b".repeat(32)}, ${b}, 'dead', 8, now(), 'HTTP 500', now())`.execute(strict.database.handle.root);

    expect((await asA.listWebhooks({})).webhooks.map((w) => w.url)).toEqual(["https://a.example.com/"]);
    expect((await asA.listDeadLetters({})).deadLetters).toEqual([]);
    const { deadLetters } = await asB.listDeadLetters({});
    expect(deadLetters.map((d) => [d.webhookId, d.event?.eventId, d.lastError])).toEqual([[bHook.webhookId, "evt_" + "b".repeat(32), "HTTP 500"]]);
  });

  it("returns dead letters newest first, 50 by default, and refuses a limit above 500", async () => {
    const accountId = newId("acc");
    const customer = await strict.asCustomer(accountId);
    const hook = (await customer.createWebhook({ url: "https://hooks.example.com/" })).webhook!;
    const events = Array.from({ length: 55 }, () => anEvent(accountId));
    await strict.admin.ingestEvents({ events });
    // Make them dead one second apart, oldest first.
    await sql`update notification.deliveries d set state = 'dead', attempts = 8, last_error = 'timeout',
                dead_at = timestamptz '2030-01-01' + (select count(*) from notification.deliveries x where x.account_id = d.account_id and x.event_id < d.event_id) * interval '1 second'
              where account_id = ${accountId}`.execute(strict.database.handle.root);
    const newestFirst = events.map((e) => e.eventId).sort().reverse();

    const listed = (await customer.listDeadLetters({})).deadLetters;
    expect(listed.map((d) => d.event!.eventId)).toEqual(newestFirst.slice(0, 50));
    expect(listed.every((d) => d.webhookId === hook.webhookId && d.lastError === "timeout" && d.attempts === 8)).toBe(true);
    expect((await customer.listDeadLetters({ limit: 3 })).deadLetters.map((d) => d.event!.eventId)).toEqual(newestFirst.slice(0, 3));
    const error = await rejection(customer.listDeadLetters({ limit: 501 }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("limit: must be from 1 to 500");
  });
});

describe("who may manage webhooks", () => {
  it("refuses an enrolled server's credentials with permission_denied; it may still list notifications", async () => {
    const accountId = newId("acc");
    const server = await strict.asServer(accountId);
    const calls: Array<[string, () => Promise<unknown>]> = [
      ["CreateWebhook", () => server.createWebhook({ url: "https://hooks.example.com/" })],
      ["ListWebhooks", () => server.listWebhooks({})],
      ["DeleteWebhook", () => server.deleteWebhook({ webhookId: newId("whk") })],
      ["ListDeadLetters", () => server.listDeadLetters({})],
    ];
    for (const [name, call] of calls) {
      const error = await rejection(call());
      expect(error.code, name).toBe(Code.PermissionDenied);
    }
    expect(await webhookRows(strict, accountId)).toBe(0);
    await expect(server.listNotifications({})).resolves.toBeDefined();
  });
});

import { describe, expect, it } from "vitest";
import { readNotificationConfig } from "./config.js";

describe("readNotificationConfig", () => {
  it("refuses private webhook targets and runs delivery every 5 s by default", () => {
    const config = readNotificationConfig({});
    expect(config.WEBHOOK_ALLOW_PRIVATE_TARGETS).toBe(false);
    expect(config.WEBHOOK_DELIVERY_INTERVAL_SECONDS).toBe(5);
  });

  it("reads the webhook settings", () => {
    const config = readNotificationConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: "true", WEBHOOK_DELIVERY_INTERVAL_SECONDS: "30" });
    expect(config.WEBHOOK_ALLOW_PRIVATE_TARGETS).toBe(true);
    expect(config.WEBHOOK_DELIVERY_INTERVAL_SECONDS).toBe(30);
    expect(readNotificationConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: "false" }).WEBHOOK_ALLOW_PRIVATE_TARGETS).toBe(false);
  });

  it("fails naming a bad variable", () => {
    expect(() => readNotificationConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: "yes" })).toThrow(/WEBHOOK_ALLOW_PRIVATE_TARGETS: must be true or false/);
    expect(() => readNotificationConfig({ WEBHOOK_DELIVERY_INTERVAL_SECONDS: "0" })).toThrow(/WEBHOOK_DELIVERY_INTERVAL_SECONDS/);
  });
});

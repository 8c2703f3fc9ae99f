import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./ports.js";
import { spawnChild, waitUntil, type Child } from "./processes.js";

/**
 * A redis-server of the fault suite's own, on a free port, keeping nothing on disk, so it
 * can be killed and restarted empty. The machine's shared Redis is never touched.
 */
export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  /** SIGKILL, then a new empty server on the same port: locks and fence counters are gone. */
  restartEmpty(): Promise<void>;
  /** A client for looking inside (the caller closes it). */
  client(): Redis;
  stop(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "cls-fault-redis-"));
  let server: Child | undefined;

  async function start(): Promise<void> {
    server = spawnChild("redis", "redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir]);
    const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on("error", () => {});
    try {
      await waitUntil(`redis-server on port ${port}\n${server.tail()}`, async () => {
        if (!server!.alive()) throw new Error(`redis-server exited:\n${server!.tail()}`);
        try {
          if (probe.status !== "ready") {
            probe.disconnect();
            await probe.connect();
          }
          return (await probe.ping()) === "PONG";
        } catch {
          return false;
        }
      }, 10_000);
    } finally {
      probe.disconnect();
    }
  }

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restartEmpty() {
      await server?.stop("SIGKILL");
      await start();
    },
    client() {
      const redis = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 1 });
      redis.on("error", () => {});
      return redis;
    },
    async stop() {
      await server?.stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

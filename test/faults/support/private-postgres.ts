import { execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./ports.js";
import { spawnChild, waitUntil, type Child } from "./processes.js";

/**
 * A Postgres cluster of the fault suite's own (initdb in a temporary folder, trust auth, a
 * free port), run as the `postgres` user because Postgres refuses root. It can be restarted
 * without disturbing the machine's shared Postgres, which other tests use.
 */
export interface PrivatePostgres {
  /** URL of its `postgres` database. */
  readonly url: string;
  /**
   * Stops the postmaster and starts it again on the same port and data: `fast` (SIGINT,
   * like `pg_ctl restart -m fast`) or `immediate` (SIGQUIT: no shutdown checkpoint, crash
   * recovery on start). Every connection drops either way.
   */
  restart(mode: "fast" | "immediate"): Promise<void>;
  stop(): Promise<void>;
}

function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error(`no Postgres server binaries under ${root}`);
  return join(root, versions[0]!, "bin");
}

function idOf(flag: "-u" | "-g", user: string): number {
  return Number(execFileSync("id", [flag, user], { encoding: "utf8" }).trim());
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBin();
  const uid = idOf("-u", "postgres");
  const gid = idOf("-g", "postgres");
  const dir = mkdtempSync(join(tmpdir(), "cls-fault-pg-"));
  chownSync(dir, uid, gid);
  const data = join(dir, "data");
  execFileSync(join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"], {
    uid,
    gid,
    cwd: dir,
    env: { ...process.env, HOME: dir },
    stdio: "pipe",
  });
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let server: Child | undefined;

  async function start(): Promise<void> {
    server = spawnChild(
      "postgres",
      join(bin, "postgres"),
      ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=on", "-c", "max_connections=120"],
      { uid, gid, cwd: dir, env: { ...process.env, HOME: dir } },
    );
    await waitUntil(`private Postgres on port ${port}`, async () => {
      if (!server!.alive()) throw new Error(`private Postgres exited:\n${server!.tail()}`);
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
      client.on("error", () => {});
      try {
        await client.connect();
        await client.query("select 1");
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => {});
      }
    }, 30_000, 100);
  }

  await start();
  return {
    url,
    async restart(mode) {
      await server!.stop(mode === "fast" ? "SIGINT" : "SIGQUIT");
      await start();
    },
    async stop() {
      if (server?.alive()) {
        await Promise.race([server.stop("SIGQUIT"), new Promise((resolve) => setTimeout(resolve, 5_000))]);
        await server.stop("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

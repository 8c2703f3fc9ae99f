import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** How much of a child's output is kept for diagnostics. */
const TAIL_CHARS = 64_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A process the fault suite started; every one is killed when the suite ends, whatever happened. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** The last part of what it printed. */
  tail(): string;
  /** Every line it printed that matches, counted since start. */
  count(pattern: RegExp): number;
  readonly exited: Promise<Exit>;
  alive(): boolean;
  signal(signal: NodeJS.Signals): void;
  /** Sends `signal` (SIGKILL unless told) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

const running = new Set<Child>();
/**
 * util-linux's setpriv execs the command (same pid) with a parent-death signal set, so a
 * child dies with the test worker even when the worker itself is killed outright.
 */
const SETPRIV = "/usr/bin/setpriv";
const withParentDeathSignal = existsSync(SETPRIV);
let refusing = false;

// If the test worker itself dies, take the children with it.
process.once("exit", () => {
  for (const child of running) {
    try {
      process.kill(child.pid, "SIGCONT");
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

export function spawnChild(
  name: string,
  command: string,
  args: string[],
  options: { env?: Record<string, string>; uid?: number; gid?: number; cwd?: string; countLines?: RegExp[] } = {},
): Child {
  if (refusing) throw new Error(`${name}: not started, the fault suite is shutting down`);
  const [file, argv]: [string, string[]] = withParentDeathSignal ? [SETPRIV, ["--pdeathsig", "KILL", "--", command, ...args]] : [command, args];
  const proc = spawn(file, argv, {
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
  });
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  let tail = "";
  let partial = "";
  const counts = new Map<RegExp, number>((options.countLines ?? []).map((pattern) => [pattern, 0]));
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    tail = (tail + text).slice(-TAIL_CHARS);
    if (counts.size === 0) return;
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) for (const [pattern, n] of counts) if (pattern.test(line)) counts.set(pattern, n + 1);
  };
  proc.stdout!.on("data", collect);
  proc.stderr!.on("data", collect);
  let alive = true;
  const exited = new Promise<Exit>((resolve) =>
    proc.once("exit", (code, signal) => {
      alive = false;
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  const child: Child = {
    name,
    pid: proc.pid,
    process: proc,
    tail: () => tail,
    count(pattern) {
      const n = counts.get(pattern);
      if (n === undefined) throw new Error(`${name}: output is not counted for ${pattern}`);
      return n;
    },
    exited,
    alive: () => alive,
    signal(signal) {
      if (alive) proc.kill(signal);
    },
    async stop(signal = "SIGKILL") {
      if (alive) {
        // A frozen process must be thawed to act on anything but SIGKILL.
        proc.kill("SIGCONT");
        proc.kill(signal);
      }
      return exited;
    },
  };
  running.add(child);
  return child;
}

/** Lets children be started again (a new harness in the same worker). */
export function allowChildren(): void {
  refusing = false;
}

/**
 * Kills every child still running (SIGKILL), waiting for each to go, and refuses new ones
 * until allowChildren(): a set-up that timed out and carries on in the background cannot
 * leave processes behind.
 */
export async function killAllChildren(): Promise<void> {
  refusing = true;
  await Promise.all([...running].map((child) => child.stop("SIGKILL")));
}

/** Polls `check` until it returns true; fails after `timeoutMs` with `what` in the message. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}


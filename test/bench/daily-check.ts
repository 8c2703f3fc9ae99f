/**
 * The daily-check-batch scenario: each of several EdgeVis Servers sends CheckEncoders for
 * all of its encoders (one batch) again and again. The request body is fixed per server, so
 * the load comes from h2load (nghttp2-client): one h2load process per server, each with one
 * connection and one call in flight, all running at once.
 *
 * Before the timed run one batch is checked from here and its answer decoded: every encoder
 * must be `ok`, with a lease per camera whose Ed25519 signature verifies.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { verifyLease, type PinnedLeaseKey } from "@cls/lease";
import { CheckEncodersResponseSchema } from "@cls/proto";
import { CHECK_ENCODERS_PATH, errorMessageOf, openSession, unary } from "./h2.js";
import type { DailyServer } from "./seed.js";
import { WORK_DIR } from "./service.js";
import { round } from "./stats.js";

export interface DailyCheckResult {
  /** Batches answered per second, all servers together. */
  batchesPerSecond: number;
  encodersPerSecond: number;
  leasesPerSecond: number;
  /** Mean time for one batch, ms (h2load's "time for request"). */
  batchMeanMs: number;
  batchMaxMs: number;
  failed: number;
}

/** Checks one batch and verifies its leases; returns how many leases one batch signs. */
export async function verifyDailyBatch(options: { publicUrl: string; caPem: string; server: DailyServer; encoders: number; pinned: PinnedLeaseKey[] }): Promise<number> {
  const session = await openSession(options.publicUrl, options.caPem);
  try {
    const answer = await unary(session, CHECK_ENCODERS_PATH, options.server.body, options.server.token);
    if (answer.status !== 200) throw new Error(`CheckEncoders: ${answer.status} ${errorMessageOf(answer)}`);
    const response = fromBinary(CheckEncodersResponseSchema, answer.body);
    const failed = response.outcomes.filter((o) => o.errorCode !== "");
    if (response.outcomes.length !== options.encoders || failed.length > 0) {
      throw new Error(`CheckEncoders: ${response.outcomes.length} outcomes, ${failed.length} failed (${failed[0]?.errorMessage ?? ""})`);
    }
    let leases = 0;
    for (const outcome of response.outcomes) {
      for (const signed of outcome.result?.leases ?? []) {
        const lease = verifyLease(signed, options.pinned);
        if (lease.encoderId !== outcome.encoderId) throw new Error(`lease for ${lease.encoderId} in ${outcome.encoderId}'s outcome`);
        leases++;
      }
    }
    return leases;
  } finally {
    session.close();
  }
}

export function h2loadAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn("h2load", ["--version"], { stdio: "ignore" });
    child.once("error", () => resolve(false));
    child.once("exit", (code) => resolve(code === 0));
  });
}

interface H2loadOutput {
  succeeded: number;
  failed: number;
  meanMs: number;
  maxMs: number;
}

function parseDuration(value: string, unit: string): number {
  const n = Number(value);
  return unit === "us" ? n / 1000 : unit === "s" ? n * 1000 : n;
}

function runH2load(args: string[], onStart: (pid: number) => void): Promise<H2loadOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
    if (child.pid) onStart(child.pid);
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => {
      const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(output);
      const timing = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(output);
      if (code !== 0 || !codes || !timing) return reject(new Error(`h2load exited ${code}:\n${output}`));
      resolve({
        succeeded: Number(codes[1]),
        // Connect answers an error with a 4xx or 5xx status. (h2load also counts the call cut off
        // by the end of its duration as failed; that one is no error of the service's.)
        failed: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
        meanMs: parseDuration(timing[5]!, timing[6]!),
        maxMs: parseDuration(timing[3]!, timing[4]!),
      });
    });
  });
}

/** All servers' h2load processes at once; warm-up excluded by h2load itself. */
export async function runDailyCheck(options: {
  publicUrl: string;
  servers: DailyServer[];
  encodersPerBatch: number;
  leasesPerBatch: number;
  warmupSeconds: number;
  seconds: number;
  onStart: (pid: number) => void;
}): Promise<DailyCheckResult> {
  const dir = join(WORK_DIR, "h2load");
  mkdirSync(dir, { recursive: true });
  const url = `${options.publicUrl}${CHECK_ENCODERS_PATH}`;
  const results = await Promise.all(
    options.servers.map((server, i) => {
      const bodyFile = join(dir, `check-${i}.bin`);
      writeFileSync(bodyFile, server.body);
      return runH2load(
        [
          "-c", "1",
          "-m", "1",
          "-t", "1",
          `--warm-up-time=${options.warmupSeconds}`,
          "-D", String(options.seconds),
          "-d", bodyFile,
          "-H", "content-type: application/proto",
          "-H", "connect-protocol-version: 1",
          "-H", `authorization: Bearer ${server.token}`,
          url,
        ],
        options.onStart,
      );
    }),
  );
  const batches = results.reduce((sum, r) => sum + r.succeeded, 0);
  const batchesPerSecond = batches / options.seconds;
  return {
    batchesPerSecond: round(batchesPerSecond, 2),
    encodersPerSecond: round(batchesPerSecond * options.encodersPerBatch),
    leasesPerSecond: round(batchesPerSecond * options.leasesPerBatch),
    batchMeanMs: round(results.reduce((sum, r) => sum + r.meanMs, 0) / results.length),
    batchMaxMs: round(Math.max(...results.map((r) => r.maxMs))),
    failed: results.reduce((sum, r) => sum + r.failed, 0),
  };
}

import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AllocationService, PoolExhaustedDetailSchema } from "@cls/proto";
import type { Camera } from "./seed.js";
import type { Attempt, Op, OpKind, Outcome } from "./history.js";

/** Codes after which an attempt's effect is unknown: try again, on another replica. */
const RETRYABLE = new Set([Code.Unavailable, Code.Internal, Code.DeadlineExceeded, Code.Canceled, Code.Unknown, Code.Aborted]);

export interface ClientOptions {
  /** Public URLs of the replicas; retries go round robin. */
  replicaUrls: string[];
  ca: string;
  cameras: Camera[];
  clients: number;
  attemptTimeoutMs?: number;
  maxAttempts?: number;
  /** A bound on each client's operations, whatever else happens. */
  maxOpsPerClient?: number;
  /** Chance that a client releases a camera it holds (otherwise it acquires it again: idempotency). */
  releaseChance?: number;
  seed?: number;
}

export interface ClientRun {
  readonly history: readonly Op[];
  /** Attempts under way on a replica right now. */
  inFlight(replica: number): number;
  /** Completed operations that satisfy `filter`. */
  countOps(filter?: (op: Op) => boolean): number;
  /** Stops starting new operations and waits for those under way to finish. */
  stop(): Promise<Op[]>;
  /** Stops starting new operations, without waiting. */
  abort(): void;
}

/** A small deterministic PRNG, so a run's choices can be replayed from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Many concurrent EdgeVis-Server-like clients, each owning a few cameras and doing one
 * operation at a time, so each camera's history is sequential. Every operation is retried
 * on another replica when its outcome is unknown, bounded in attempts.
 */
export function startClients(options: ClientOptions): ClientRun {
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 2_500;
  const maxAttempts = options.maxAttempts ?? 12;
  const releaseChance = options.releaseChance ?? 0.5;
  const maxOpsPerClient = options.maxOpsPerClient ?? 2_000;
  const seed = options.seed ?? Date.now() % 1_000_000;
  const services: Client<typeof AllocationService>[] = options.replicaUrls.map((baseUrl) =>
    createClient(AllocationService, createConnectTransport({ baseUrl, httpVersion: "2", nodeOptions: { ca: options.ca } })),
  );
  const inFlight = options.replicaUrls.map(() => 0);
  const history: Op[] = [];
  let stopping = false;
  let opSeq = 0;

  async function attempt(kind: OpKind, camera: Camera, replica: number): Promise<{ attempt: Attempt; outcome?: Outcome }> {
    const startedAt = Date.now();
    const call = { headers: { authorization: `Bearer ${camera.token}` }, timeoutMs: attemptTimeoutMs };
    inFlight[replica]!++;
    try {
      let outcome: Outcome;
      if (kind === "acquire") {
        const res = await services[replica]!.acquireLicence({ encoderId: camera.encoderId, cameraId: camera.cameraId }, call);
        const allocation = res.allocation!;
        const answeredFor = `${allocation.serverId}/${allocation.encoderId}/${allocation.cameraId}`;
        outcome =
          answeredFor === camera.key
            ? { type: "granted", allocationId: allocation.allocationId, poolId: allocation.poolId }
            : { type: "refused", code: "MismatchedAllocation", message: `answered with ${allocation.allocationId} of ${answeredFor}` };
      } else {
        const res = await services[replica]!.releaseLicence({ encoderId: camera.encoderId, cameraId: camera.cameraId }, call);
        outcome = { type: "released", released: res.released };
      }
      return { attempt: { replica, startedAt, endedAt: Date.now(), result: "answered" }, outcome };
    } catch (error) {
      const err = ConnectError.from(error);
      const code = Code[err.code];
      if (RETRYABLE.has(err.code)) return { attempt: { replica, startedAt, endedAt: Date.now(), result: "lost", code } };
      const detail = err.findDetails(PoolExhaustedDetailSchema)[0];
      return {
        attempt: { replica, startedAt, endedAt: Date.now(), result: "answered", code },
        outcome: { type: "refused", code, message: err.rawMessage, ...(detail ? { total: detail.total, used: detail.used } : {}) },
      };
    } finally {
      inFlight[replica]!--;
    }
  }

  async function operate(client: number, kind: OpKind, camera: Camera, firstReplica: number): Promise<Op> {
    const op: Op = { id: `c${client}-r${++opSeq}`, client, camera: camera.key, kind, startedAt: Date.now(), endedAt: 0, attempts: [], outcome: { type: "gave_up" } };
    for (let n = 0; n < maxAttempts; n++) {
      const replica = (firstReplica + n) % services.length;
      const { attempt: tried, outcome } = await attempt(kind, camera, replica);
      op.attempts.push(tried);
      if (outcome) {
        op.outcome = outcome;
        break;
      }
      await sleep(Math.min(25 * (n + 1), 250));
    }
    op.endedAt = Date.now();
    return op;
  }

  async function loop(client: number, cameras: Camera[]): Promise<void> {
    const random = mulberry32(seed * 1_000 + client);
    // What this client believes each camera holds: an allocation id, nothing, or unknown.
    const holds = new Map<string, string | null | "unknown">();
    let turn = client;
    for (let n = 0; n < maxOpsPerClient && !stopping; n++) {
      const camera = cameras[Math.floor(random() * cameras.length)]!;
      const held = holds.get(camera.key) ?? null;
      const kind: OpKind = typeof held === "string" && held !== "unknown" && random() < releaseChance ? "release" : "acquire";
      const op = await operate(client, kind, camera, turn++ % services.length);
      history.push(op);
      if (op.outcome.type === "granted") holds.set(camera.key, op.outcome.allocationId);
      else if (op.outcome.type === "gave_up") holds.set(camera.key, "unknown");
      else holds.set(camera.key, null);
      await sleep(Math.floor(random() * 5));
    }
  }

  const owned = Array.from({ length: options.clients }, () => [] as Camera[]);
  options.cameras.forEach((camera, i) => owned[i % options.clients]!.push(camera));
  const loops = owned.filter((cameras) => cameras.length > 0).map((cameras, client) => loop(client, cameras));

  return {
    history,
    inFlight: (replica) => inFlight[replica]!,
    countOps: (filter) => (filter ? history.filter(filter).length : history.length),
    async stop() {
      stopping = true;
      await Promise.all(loops);
      return history;
    },
    abort() {
      stopping = true;
    },
  };
}

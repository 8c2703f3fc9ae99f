/** What the fault suite's clients did and were told: the input of the checker. */

export type OpKind = "acquire" | "release";

/** One try of an operation on one replica. */
export interface Attempt {
  replica: number;
  startedAt: number;
  endedAt: number;
  /**
   * answered: the service replied (a result or a definite refusal);
   * lost: no usable reply (connection dropped, timeout, unavailable, internal), so the
   * attempt may or may not have taken effect.
   */
  result: "answered" | "lost";
  code?: string;
}

export type Outcome =
  | { type: "granted"; allocationId: string; poolId: string }
  | { type: "refused"; code: string; message: string; total?: number; used?: number }
  | { type: "released"; released: boolean }
  | { type: "gave_up" };

/** One request as a client saw it, retries included. */
export interface Op {
  /** The client's own request id. */
  id: string;
  client: number;
  /** Camera key (server/encoder/camera). */
  camera: string;
  kind: OpKind;
  startedAt: number;
  endedAt: number;
  attempts: Attempt[];
  outcome: Outcome;
}

export const lostAttempts = (op: Op): number => op.attempts.filter((a) => a.result === "lost").length;

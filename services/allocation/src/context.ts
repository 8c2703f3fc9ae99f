import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Clock } from "@cls/clock";
import type { LeaseSigner } from "@cls/lease";
import type { OutboxRelay } from "@cls/outbox";
import type { AllocationDatabase } from "./database.js";
import type { PoolAllocator } from "./pool-allocator.js";

/** What the allocation use cases share. */
export interface AllocationContext {
  db: Kysely<AllocationDatabase>;
  clock: Clock;
  logger: Logger;
  signer: LeaseSigner;
  allocator: PoolAllocator;
  outbox: OutboxRelay;
  /** Fault suite only: chance of a SIGKILL between a grant's commit and its reply. */
  crashAfterCommit: number;
}

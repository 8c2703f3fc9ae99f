import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Clock } from "@cls/clock";
import type { LeaseSigner } from "@cls/lease";
import type { OutboxRelay } from "@cls/outbox";
import type { AcquireContextLoader } from "./acquire-context.loader.js";
import type { AllocationDatabase } from "./database.js";
import type { PoolAllocator } from "./pool-allocator.js";

/** What the allocation use cases share. */
export interface AllocationContext {
  db: Kysely<AllocationDatabase>;
  clock: Clock;
  logger: Logger;
  signer: LeaseSigner;
  allocator: PoolAllocator;
  /** The pre-read of AcquireLicence, shared by the calls waiting at the same moment. */
  acquireContexts: AcquireContextLoader;
  outbox: OutboxRelay;
  /** Fault suite only: chance of a SIGKILL between a grant's commit and its reply. */
  crashAfterCommit: number;
}

import type { ServiceBinding } from "@cls/server";

/** What one CLS service contributes to a process: its routes and its background work. */
export interface ServiceModule {
  name: string;
  publicServices: ServiceBinding[];
  internalServices: ServiceBinding[];
  /** Public methods (`pkg.Service/Method`) callable without an access token. */
  anonymousMethods: string[];
  /** Delivers the module's pending outbox events now (tests; production relays on its own). */
  flushOutbox?(): Promise<void>;
  /** Runs every scheduled job once, now (tests drive time with a ManualClock and call this). */
  runJobs?(): Promise<void>;
  /** Stops background work (relays, jobs). */
  stop(): Promise<void>;
}

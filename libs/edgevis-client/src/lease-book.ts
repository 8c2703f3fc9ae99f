import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Lease, SignedLease } from "@cls/proto";

/** A lease whose signature has been checked against a pinned key. */
export interface VerifiedLease {
  lease: Lease;
  signed: SignedLease;
}

/**
 * How a camera's licence stands on the server's side (SPEC L9):
 * - licensed: a lease is held and CLS was reached recently;
 * - warning: no contact with CLS for 7 days (the lease's warn_after has passed): keep
 *   running, but tell the operator to restore the connection;
 * - lapsed: the lease expired (about 30 days without contact, or the pool's expiry): stop;
 * - unlicensed: no lease was ever granted, or it was revoked or released.
 */
export type LicenceStanding = "licensed" | "warning" | "lapsed" | "unlicensed";

/**
 * The leases an EdgeVis Server holds, judged by its own clock, so its encoders keep running
 * through a CLS outage and stop only when the leases run out. Only verified leases go in.
 */
export class LeaseBook {
  readonly #leases = new Map<string, Lease>();

  static key(encoderId: string, cameraId: string): string {
    return `${encoderId}\u0000${cameraId}`;
  }

  /** Keeps the newest lease per camera (highest serial). */
  record(verified: VerifiedLease): void {
    const { lease } = verified;
    const key = LeaseBook.key(lease.encoderId, lease.cameraId);
    const held = this.#leases.get(key);
    if (!held || held.serial < lease.serial) this.#leases.set(key, lease);
  }

  /** Forgets a camera's lease: it was released, or CLS revoked it. */
  forget(encoderId: string, cameraId: string): void {
    this.#leases.delete(LeaseBook.key(encoderId, cameraId));
  }

  lease(encoderId: string, cameraId: string): Lease | undefined {
    return this.#leases.get(LeaseBook.key(encoderId, cameraId));
  }

  standing(encoderId: string, cameraId: string, now: Date): LicenceStanding {
    const lease = this.lease(encoderId, cameraId);
    if (!lease) return "unlicensed";
    if (lease.perpetual) return "licensed";
    if (!lease.expiresAt || now >= timestampDate(lease.expiresAt)) return "lapsed";
    if (lease.warnAfter && now >= timestampDate(lease.warnAfter)) return "warning";
    return "licensed";
  }

  /** Cameras whose lease is due for renewal at the daily check (renew_after has passed). */
  dueForRenewal(now: Date): Lease[] {
    return [...this.#leases.values()].filter((lease) => !lease.perpetual && lease.renewAfter && now >= timestampDate(lease.renewAfter));
  }

  /** True when any held lease is in its warning period: the server shows the 7-day warning. */
  shouldWarn(now: Date): boolean {
    return [...this.#leases.values()].some((lease) => this.standing(lease.encoderId, lease.cameraId, now) === "warning");
  }
}

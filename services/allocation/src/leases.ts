import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { LeaseSigner } from "@cls/lease";
import { LeaseSchema, type Lease, type SignedLease } from "@cls/proto";
import type { AllocationTable } from "./database.js";
import type { LeaseTimes } from "./lease-times.js";

type LeaseSubject = Pick<AllocationTable, "account_id" | "pool_id" | "server_id" | "encoder_id" | "camera_id" | "licence_type" | "kind">;

/** A perpetual legacy licence has an issue time and nothing else. */
export type LeaseTimesOrPerpetual = LeaseTimes | { issuedAt: Date };

/** Signs the lease of one allocation (SPEC L9). */
export function signLease(signer: LeaseSigner, allocation: LeaseSubject, serial: number, times: LeaseTimesOrPerpetual): SignedLease {
  return signer.sign(leaseOf(allocation, serial, times));
}

/** As `signLease`, signing off the main thread: for many leases at once, awaited together. */
export function signLeaseAsync(signer: LeaseSigner, allocation: LeaseSubject, serial: number, times: LeaseTimesOrPerpetual): Promise<SignedLease> {
  return signer.signAsync(leaseOf(allocation, serial, times));
}

/** The lease of one allocation. Legacy licences are perpetual: no expiry. */
function leaseOf(allocation: LeaseSubject, serial: number, times: LeaseTimesOrPerpetual): Lease {
  return create(LeaseSchema, {
    accountId: allocation.account_id,
    poolId: allocation.pool_id ?? "",
    serverId: allocation.server_id,
    encoderId: allocation.encoder_id,
    cameraId: allocation.camera_id,
    licenceType: allocation.licence_type,
    serial: BigInt(serial),
    perpetual: allocation.kind === "legacy",
    issuedAt: timestampFromDate(times.issuedAt),
    ...("expiresAt" in times
      ? {
          renewAfter: timestampFromDate(times.renewAfter),
          warnAfter: timestampFromDate(times.warnAfter),
          expiresAt: timestampFromDate(times.expiresAt),
        }
      : {}),
  });
}

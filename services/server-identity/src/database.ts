import type { AuditTable } from "@cls/audit";
import type { OutboxTable } from "@cls/outbox";

/** The server-identity service's schema. */
export const SERVER_IDENTITY_SCHEMA = "server_identity";

export interface EnrollmentCodeTable {
  /** SHA-256 hex of the code as shown; the code itself is never stored. */
  code_hash: string;
  account_id: string;
  pool_id: string;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
  used_by_server_id: string | null;
}

export type ServerStateName = "active" | "revoked";

export interface ServerTable {
  server_id: string;
  account_id: string;
  pool_id: string;
  name: string;
  /** Raw 32-byte Ed25519 public key. */
  public_key: Uint8Array;
  state: ServerStateName;
  enrolled_at: Date;
  revoked_at: Date | null;
  key_rotated_at: Date | null;
}

export interface ChallengeTable {
  challenge_id: string;
  server_id: string;
  nonce: string;
  expires_at: Date;
  used_at: Date | null;
}

/** A customer's API key (SPEC L14). The secret is shown once and never stored. */
export interface ApiKeyTable {
  /** `key_…`; also the middle part of the key string `cls_<key_id>_<secret>`. */
  key_id: string;
  account_id: string;
  name: string;
  /** SHA-256 hex of the secret part. */
  secret_hash: string;
  created_at: Date;
  revoked_at: Date | null;
}

export interface ServerIdentityDatabase {
  enrollment_codes: EnrollmentCodeTable;
  servers: ServerTable;
  challenges: ChallengeTable;
  api_keys: ApiKeyTable;
  audit: AuditTable;
  outbox: OutboxTable;
}

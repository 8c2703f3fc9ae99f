import { Code } from "@connectrpc/connect";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";

/** A detail message attached to an error, as Connect sends it. */
export interface ErrorDetail<Desc extends DescMessage = DescMessage> {
  desc: Desc;
  value: MessageShape<Desc>;
}

/**
 * A refusal the API answers with a specific Connect code (SPEC error table).
 * Domain code throws these; one interceptor turns them into ConnectErrors.
 * The message is sent to the caller, so it must never hold another account's data.
 */
export class ClsError extends Error {
  constructor(
    readonly code: Code,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidArgumentError extends ClsError {
  constructor(field: string, why: string) {
    super(Code.InvalidArgument, `${field}: ${why}`);
  }
}

export class NotFoundError extends ClsError {
  constructor(what: string) {
    super(Code.NotFound, `${what} not found`);
  }
}

export class PermissionDeniedError extends ClsError {
  constructor(message: string) {
    super(Code.PermissionDenied, message);
  }
}

export class UnauthenticatedError extends ClsError {
  constructor(message: string) {
    super(Code.Unauthenticated, message);
  }
}

export class AlreadyExistsError extends ClsError {
  constructor(message: string) {
    super(Code.AlreadyExists, message);
  }
}

export class FailedPreconditionError extends ClsError {
  constructor(message: string, details: ErrorDetail[] = []) {
    super(Code.FailedPrecondition, message, details);
  }
}

export class ResourceExhaustedError extends ClsError {
  constructor(message: string, details: ErrorDetail[] = []) {
    super(Code.ResourceExhausted, message, details);
  }
}

/** A dependency is down; the caller may retry (SPEC L10: nothing is queued). */
export class UnavailableError extends ClsError {
  constructor(message: string) {
    super(Code.Unavailable, message);
  }
}

const NETWORK_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "EAI_AGAIN"]);

/**
 * True when an error means a dependency (Postgres, Redis, another service) could not be
 * reached or went away mid-call: safe for the caller to retry, so it maps to `unavailable`.
 */
export function isDependencyUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") {
    if (NETWORK_ERROR_CODES.has(code)) return true;
    // Postgres SQLSTATE classes: 08 connection exception, 57P0x operator intervention, 53 insufficient resources.
    if (/^08|^57P0|^53/.test(code)) return true;
  }
  return /Connection terminated|connection is closed|Connection is closed|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    error.message,
  );
}

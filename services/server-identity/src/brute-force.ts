import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import { ResourceExhaustedError } from "@cls/errors";

/** At most `failures` failed attempts in a fixed window of `windowSeconds`. */
export interface FailureLimit {
  failures: number;
  windowSeconds: number;
}

/**
 * Brute-force limits on the anonymous credential checks (issue 4). Every limit is keyed on
 * what is being guessed (an enrollment code's hash, an API key id, a server id) or on
 * nothing at all (the global limits), never on the caller's address (SPEC L13).
 */
export interface BruteForceLimits {
  /** Failed enrollments with one code. */
  enrollmentPerCode: FailureLimit;
  /** Failed enrollments across all codes: what actually stops guessing random codes. */
  enrollmentGlobal: FailureLimit;
  /** Failed API-key exchanges naming one key id. */
  apiKeyPerKey: FailureLimit;
  /** Failed API-key exchanges across all key ids. */
  apiKeyGlobal: FailureLimit;
  /**
   * Failed sign-ins of one server. There is deliberately no global sign-in limit: anyone
   * could then lock every EdgeVis Server out. This one lets somebody who knows a server id
   * delay that server's sign-in for a window, which is why it is generous.
   */
  authenticatePerServer: FailureLimit;
  /**
   * Challenges issued to one server, successful or not: each is a row kept for a minute, so
   * somebody who knows a server id cannot grow the table without bound.
   */
  challengesPerServer: FailureLimit;
}

export const DEFAULT_BRUTE_FORCE_LIMITS: Readonly<BruteForceLimits> = Object.freeze({
  enrollmentPerCode: { failures: 5, windowSeconds: 15 * 60 },
  enrollmentGlobal: { failures: 20, windowSeconds: 60 },
  apiKeyPerKey: { failures: 5, windowSeconds: 15 * 60 },
  apiKeyGlobal: { failures: 20, windowSeconds: 60 },
  authenticatePerServer: { failures: 10, windowSeconds: 5 * 60 },
  challengesPerServer: { failures: 30, windowSeconds: 60 },
});

/** One attempt that has reserved a failure in each of its limits. */
export interface Attempt {
  /** The attempt succeeded (or failed for a reason that is not the caller's): give the reservations back. Never throws. */
  refund(): Promise<void>;
}

/** Where the credential checks ask before trying, and report how it went. */
export interface BruteForceGuard {
  enrollment(codeHash: string): Promise<Attempt>;
  apiKeyExchange(keyId: string): Promise<Attempt>;
  authenticate(serverId: string): Promise<Attempt>;
  /** Counts one challenge issued to the server; refuses once its allowance is spent. */
  challenge(serverId: string): Promise<void>;
}

export interface BruteForceGuardOptions {
  /** Shared counters across replicas; without it each process counts on its own. */
  redis?: Redis | undefined;
  limits?: Partial<BruteForceLimits> | undefined;
  /** Prefix of the Redis keys (tests use a random one). */
  keyPrefix?: string | undefined;
  logger: Logger;
}

const GLOBAL_KEY = "all";

class FailureCounter {
  private readonly limiter: RateLimiterAbstract;

  constructor(
    readonly name: string,
    private readonly limit: FailureLimit,
    options: BruteForceGuardOptions,
    private readonly logger: Logger,
  ) {
    const base = { keyPrefix: `${options.keyPrefix ?? "cls:bruteforce:"}${name}`, points: limit.failures, duration: limit.windowSeconds };
    // With Redis unreachable the counts fall back to this process's memory: weaker across
    // replicas, but never unlimited, and sign-in keeps working.
    this.limiter = options.redis
      ? new RateLimiterRedis({ ...base, storeClient: options.redis, rejectIfRedisNotReady: true, insuranceLimiter: new RateLimiterMemory(base) })
      : new RateLimiterMemory(base);
  }

  /** Takes one failure from the allowance; the seconds to wait when there is none left. */
  async reserve(key: string): Promise<{ ok: true } | { ok: false; retryAfterSeconds: number }> {
    try {
      await this.limiter.consume(key, 1);
      return { ok: true };
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      // Logged once per window and limit; the key is a hash or an id, never a secret or an address.
      if (rejection.consumedPoints === this.limit.failures + 1) {
        this.logger.warn({ limit: this.name, window_seconds: this.limit.windowSeconds }, "brute-force limit reached; refusing attempts");
      }
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
    }
  }

  /** Never throws: a refund that does not happen only makes the limit a little stricter. */
  async refund(key: string): Promise<void> {
    try {
      await this.limiter.reward(key, 1);
    } catch (error) {
      this.logger.warn({ err: error, limit: this.name }, "could not refund a brute-force reservation");
    }
  }
}

/**
 * Counts failed attempts with a reservation: each attempt takes one failure from every limit
 * before it runs (atomically, in Redis when there is one), and gives it back if it succeeds.
 * Concurrent guesses therefore cannot overshoot a limit. When a limit is used up the attempt is
 * refused with `resource_exhausted` before any credential is looked at. The windows run on
 * real time, not the service's injectable clock.
 */
export function createBruteForceGuard(options: BruteForceGuardOptions): BruteForceGuard {
  const limits = { ...DEFAULT_BRUTE_FORCE_LIMITS, ...options.limits };
  const logger = options.logger;
  const counter = (name: string, limit: FailureLimit) => new FailureCounter(name, limit, options, logger);
  const enrollmentGlobal = counter("enroll-all", limits.enrollmentGlobal);
  const enrollmentPerCode = counter("enroll-code", limits.enrollmentPerCode);
  const apiKeyGlobal = counter("apikey-all", limits.apiKeyGlobal);
  const apiKeyPerKey = counter("apikey-key", limits.apiKeyPerKey);
  const authenticatePerServer = counter("auth-server", limits.authenticatePerServer);
  const challengesPerServer = counter("challenge-server", limits.challengesPerServer);

  async function begin(checks: Array<[FailureCounter, string]>, refusal = "too many failed attempts"): Promise<Attempt> {
    const reserved: Array<[FailureCounter, string]> = [];
    const refund = () => Promise.all(reserved.map(([c, key]) => c.refund(key))).then(() => undefined);
    // The global limit comes first, so a refused flood creates no per-key counters.
    for (const [c, key] of checks) {
      const outcome = await c.reserve(key);
      if (!outcome.ok) {
        await refund();
        throw new ResourceExhaustedError(`${refusal}; retry after ${outcome.retryAfterSeconds} seconds`);
      }
      reserved.push([c, key]);
    }
    return { refund };
  }

  return {
    enrollment: (codeHash) => begin([[enrollmentGlobal, GLOBAL_KEY], [enrollmentPerCode, codeHash]]),
    apiKeyExchange: (keyId) => begin([[apiKeyGlobal, GLOBAL_KEY], [apiKeyPerKey, keyId]]),
    authenticate: (serverId) => begin([[authenticatePerServer, serverId]]),
    challenge: (serverId) => begin([[challengesPerServer, serverId]], "too many challenges requested for this server").then(() => undefined),
  };
}

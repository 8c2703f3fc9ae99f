import { pino, type Logger } from "pino";

export type { Logger };

/** JSON logs, one object per line. Never give it an IP address. */
export function createLogger(name: string, level: string): Logger {
  return pino({ name, level, base: { service: name }, timestamp: pino.stdTimeFunctions.isoTime });
}

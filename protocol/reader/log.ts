/** The logger a stream reader reports through (pino's shape). */
export interface ReaderLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** For readers given no logger. */
export const silent: ReaderLog = { info() {}, warn() {}, error() {} };

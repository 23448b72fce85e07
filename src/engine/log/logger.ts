// The logging port of the log layer: the three pino-compatible methods it uses, and a silent default.

export interface LogLayerLogger {
  info(fields: object, msg?: string): void;
  warn(fields: object, msg?: string): void;
  error(fields: object, msg?: string): void;
}

export const silentLogger: LogLayerLogger = Object.freeze({
  info() {},
  warn() {},
  error() {},
});

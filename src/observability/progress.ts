// Progress of a long command (doctor, export, import) on stderr: on a terminal one line redrawn in place at most every
// `intervalMs`; elsewhere (a pipe, a log file) nothing, or a plain line every `plainIntervalMs` when asked for.

export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressOptions {
  stream: ProgressStream;
  /** Redraws on a terminal at most this often; default 200 ms. */
  intervalMs?: number;
  /** When not a terminal, write a line this often (null: never); default null. */
  plainIntervalMs?: number | null;
  now?: () => number;
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly intervalMs: number | null;
  private readonly now: () => number;
  private lastMs: number;
  private drawn = false;

  constructor(options: ProgressOptions) {
    this.stream = options.stream;
    this.intervalMs = options.stream.isTTY === true ? (options.intervalMs ?? 200) : (options.plainIntervalMs ?? null);
    this.now = options.now ?? Date.now;
    // The first line comes one interval after the start: a command that ends sooner shows none.
    this.lastMs = this.now();
  }

  /** Shows `describe()` if the interval has passed; `describe` is only called then (it may format numbers). */
  update(describe: () => string): void {
    if (this.intervalMs === null) return;
    const now = this.now();
    if (now - this.lastMs < this.intervalMs) return;
    this.lastMs = now;
    if (this.stream.isTTY === true) {
      // Carriage return and erase-to-end-of-line: the line is redrawn in place.
      this.stream.write(`\r${describe()}\u001b[K`);
      this.drawn = true;
    } else {
      this.stream.write(`${describe()}\n`);
    }
  }

  /** Erases the progress line (a terminal) so the command's own output starts on a clean line. */
  end(): void {
    if (this.drawn) this.stream.write('\r\u001b[K');
    this.drawn = false;
  }
}

export function formatMiB(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

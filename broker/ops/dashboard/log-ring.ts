/**
 * The last few thousand log records, kept in memory for the dashboard's live
 * tail. It is a pino destination (one JSON line per write) added beside stdout
 * where the logger is created (ops/logging.ts), so it sees exactly what the
 * operator's log sees, at the same level.
 */
export interface LogRecord {
  level: number;
  time: number;
  msg?: string;
  [key: string]: unknown;
}

export type LogListener = (record: LogRecord) => void;

export class LogRing {
  private readonly records: LogRecord[] = [];
  private readonly listeners = new Set<LogListener>();

  constructor(readonly capacity = 2000) {}

  /** pino's destination interface: one serialised record per call. */
  write(line: string): boolean {
    let record: LogRecord;
    try {
      record = JSON.parse(line) as LogRecord;
    } catch {
      return true;
    }
    if (typeof record !== "object" || record === null || typeof record.level !== "number") return true;
    this.records.push(record);
    if (this.records.length > this.capacity) this.records.splice(0, this.records.length - this.capacity);
    for (const l of this.listeners) l(record);
    return true;
  }

  /** Records at `minLevel` or above, oldest first, at most `limit`. */
  recent(minLevel = 0, limit = this.capacity): LogRecord[] {
    const out = this.records.filter((r) => r.level >= minLevel);
    return out.length > limit ? out.slice(out.length - limit) : out;
  }

  subscribe(fn: LogListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

/** pino's numeric levels by name (and the names the dashboard's filter offers). */
export const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

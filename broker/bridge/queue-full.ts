/**
 * The log of a bridge queue that is full: one warning when it fills (what the
 * onFull policy drops), one line when it has room again (how many were
 * dropped meanwhile) — not a line per dropped message.
 */
import type { Logger } from "pino";
import type { BridgeConfig } from "./config.js";

export class QueueFullLog {
  private since: number | null = null;
  private droppedWhileFull = 0;

  constructor(
    private readonly cfg: Pick<BridgeConfig, "name" | "maxMessages" | "maxBytes">,
    private readonly logger: Logger,
  ) {}

  get full(): boolean {
    return this.since !== null;
  }

  dropped(policy: "drop-oldest" | "drop-new", n: number, queue: { depth: number; bytes: number }): void {
    this.droppedWhileFull += n;
    if (this.since !== null) return;
    this.since = Date.now();
    const what = policy === "drop-new" ? "new messages are dropped" : "the oldest messages are dropped to make room";
    this.logger.warn(
      { bridge: this.cfg.name, queued: queue.depth, bytes: queue.bytes, maxMessages: this.cfg.maxMessages, maxBytes: this.cfg.maxBytes, onFull: policy },
      `bridge ${this.cfg.name}: queue full (${queue.depth} messages, ${queue.bytes} bytes): ${what}`,
    );
  }

  roomAgain(): void {
    if (this.since === null) return;
    this.logger.info(
      { bridge: this.cfg.name, dropped: this.droppedWhileFull, fullForMs: Date.now() - this.since },
      `bridge ${this.cfg.name}: queue has room again (${this.droppedWhileFull} messages dropped while full)`,
    );
    this.since = null;
    this.droppedWhileFull = 0;
  }
}

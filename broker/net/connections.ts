/**
 * Every socket the listeners accept passes through one ConnectionTracker: it
 * enforces `maxConnections` across TCP, TLS and WebSocket together (refusing
 * at accept, before TLS or HTTP work is spent), and counts the bytes that
 * crossed the wire. Byte totals are read from the sockets' own counters when
 * asked (scrape, $SYS tick), so the per-message path pays nothing.
 */
import type { Socket } from "node:net";

export interface ConnectionTrackerEvents {
  /** A socket was refused because `maxConnections` were open. Called for each refusal. */
  onRefused?: (socket: Socket, open: number) => void;
}

export class ConnectionTracker {
  private readonly live = new Set<Socket>();
  private closedBytesRead = 0;
  private closedBytesWritten = 0;
  /** Sockets accepted since start. */
  accepted = 0;
  /** Sockets refused at accept because of `maxConnections`. */
  refused = 0;

  constructor(
    private readonly maxConnections: number,
    private readonly events: ConnectionTrackerEvents = {},
  ) {}

  /** Sockets currently open (MQTT clients, and connections that have not sent CONNECT yet). */
  get open(): number {
    return this.live.size;
  }

  /**
   * Admit a freshly accepted socket, or destroy it when the limit is reached.
   * Returns whether it was admitted.
   */
  admit(socket: Socket): boolean {
    if (this.live.size >= this.maxConnections) {
      this.refused++;
      this.events.onRefused?.(socket, this.live.size);
      socket.destroy();
      return false;
    }
    this.accepted++;
    this.live.add(socket);
    socket.on("close", this.onClose);
    return true;
  }

  /** One listener for every socket (`this` is the socket): a closure per connection plus once()'s wrapper and its state object would stay alive as long as the socket. */
  private readonly onClose = ((tracker: ConnectionTracker) =>
    function onSocketClose(this: Socket): void {
      if (!tracker.live.delete(this)) return;
      tracker.closedBytesRead += this.bytesRead;
      tracker.closedBytesWritten += this.bytesWritten;
    })(this);

  bytesReceived(): number {
    let total = this.closedBytesRead;
    for (const s of this.live) total += s.bytesRead;
    return total;
  }

  bytesSent(): number {
    let total = this.closedBytesWritten;
    for (const s of this.live) total += s.bytesWritten;
    return total;
  }

  /** Destroy every socket still open (shutdown; aedes closes its clients first). */
  destroyAll(): void {
    for (const s of this.live) s.destroy();
  }
}

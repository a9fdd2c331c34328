/**
 * aedes' Client constructor (lib/client.js) listens to every connection with
 * three functions bound to the client: the stream's and the parser's 'error'
 * forwarded to the client (`this.emit.bind(this, 'error')`) and the stream's
 * 'end' closing it (`this.close.bind(this)`). A bound function and its bound
 * arguments stay alive as long as the connection: ~190 B per idle client
 * (bench/README.md "mem3").
 *
 * aedes names the client on both emitters (`conn.client`, `parser.client`),
 * so one shared function per event does the same: each is swapped in at the
 * place of aedes' (same order, same effect). A listener that is not aedes'
 * (another name, or already swapped) is left alone.
 */
import type { EventEmitter } from "node:events";
import type { Client } from "aedes";

interface Named {
  client: { emit(event: "error", err: Error): boolean; close(): void };
}

/** The stream's or the parser's 'error', reported on the client (aedes closes it there). */
function forwardErrorToClient(this: Named, err: Error): void {
  this.client.emit("error", err);
}

/** The stream ended: the client closes. */
function closeClientOnEnd(this: Named): void {
  this.client.close();
}

type Listener = (...args: never[]) => void;

/**
 * Replace aedes' bound listener in place, in the emitter's own listener table
 * (`_events`, EventEmitter's storage since Node 0.x): removing and re-adding
 * listeners through the public API deletes the event's key, which turns the
 * socket's small listener table into a dictionary (~450 B, measured).
 */
function swap(emitter: EventEmitter, event: string, boundName: string, shared: Listener): void {
  const table = (emitter as unknown as { _events?: Record<string, Listener | Listener[] | undefined> })._events;
  const current = table?.[event];
  if (typeof current === "function") {
    if (current.name === boundName) table![event] = shared;
  } else if (Array.isArray(current)) {
    const at = current.findIndex((l) => l.name === boundName);
    if (at >= 0) current[at] = shared;
  }
}

/** Call right after aedes' `handle` created the client, before other layers listen. */
export function shareAedesListeners(client: Client): void {
  const c = client as unknown as { conn: EventEmitter & Partial<Named>; _parser: EventEmitter & Partial<Named> };
  if (c.conn.client !== client || c._parser.client !== client) return; // not the layout this was written for
  swap(c.conn, "error", "bound emit", forwardErrorToClient);
  swap(c._parser, "error", "bound emit", forwardErrorToClient);
  swap(c.conn, "end", "bound close", closeClientOnEnd);
}

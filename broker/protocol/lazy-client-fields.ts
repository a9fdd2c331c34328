/**
 * aedes' Client creates, for every connection, a Set of the inbound QoS 2
 * packet identifiers awaiting PUBREL (`_inboundInflight`, the
 * maxInflightInbound window of lib/handlers/publish.js). Only a client that
 * publishes at QoS 2 ever touches it; an idle device fleet holds one empty
 * Set and its hash table per connection (~0.1 KB, bench/README.md "mem3").
 *
 * Installed once per process on aedes' Client prototype: the constructor's
 * `this._inboundInflight = new Set()` lands in a setter that keeps nothing
 * while the Set is empty, and the first read creates the client's own Set
 * (an own property from then on, read directly). The window, its limit and
 * its error are aedes' own, unchanged (test: qos2-resume, ops-limits).
 */
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { dirname, join } from "node:path";

const FIELD = "_inboundInflight";
let installed = false;

function ownSet(target: object, value: Set<number>): void {
  Object.defineProperty(target, FIELD, { value, writable: true, enumerable: true, configurable: true });
}

/** Make aedes' per-client inbound QoS 2 window lazy (idempotent). */
export async function installLazyClientFields(): Promise<void> {
  if (installed) return;
  installed = true;
  // aedes does not export its Client class; its prototype is what every connection's client inherits from.
  const clientModule = join(dirname(createRequire(import.meta.url).resolve("aedes")), "lib", "client.js");
  const { default: Client } = (await import(pathToFileURL(clientModule).href)) as { default: { prototype: object } };
  if (Object.getOwnPropertyDescriptor(Client.prototype, FIELD)) return;
  Object.defineProperty(Client.prototype, FIELD, {
    configurable: true,
    get(this: object): Set<number> {
      const set = new Set<number>();
      ownSet(this, set);
      return set;
    },
    set(this: object, value: Set<number>) {
      // the constructor's empty Set is dropped; anything else is kept as the client's own
      if (value instanceof Set && value.size === 0) return;
      ownSet(this, value);
    },
  });
}

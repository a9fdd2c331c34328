/**
 * The parts of aedes 1.2 it does not export, loaded from the same module
 * instances aedes uses (the CommonJS cache and the same file URL), for the
 * layers that take over one of its steps (lean-publish.ts, outgoing-publish.ts).
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Client } from "aedes";

const aedesMain = createRequire(import.meta.url).resolve("aedes");

/** aedes' packet class (aedes-packet, the module and version aedes builds its packets with). */
export const AedesPacket = createRequire(aedesMain)("aedes-packet") as new <P extends object>(original: object, broker: object) => P;

type Done = (err?: Error | null) => void;
/** aedes' packet dispatcher (lib/handlers/index.js), the one its client's `enqueue` calls. */
export const aedesHandle = ((await import(pathToFileURL(join(dirname(aedesMain), "lib", "handlers", "index.js")).href)) as { default: (client: Client, packet: { cmd: string }, done: Done) => void }).default;

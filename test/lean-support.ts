// Shared by lean-publish.test.ts and lean-qos1.test.ts: what aedes' own publish and its contract see.
import { Aedes } from "aedes";

export type Published = { topic: string; payload: Buffer; qos?: number; retain?: boolean; brokerId?: string };
export type PublishFn = (packet: object, done: (err?: Error) => void) => void;

/** Record aedes' published() calls and 'publish' events for topics under `prefix`. */
export function watchPublished(aedes: Aedes, prefix: string) {
  const published: { packet: Published; clientId: string | null }[] = [];
  const events: { packet: Published; clientId: string | null }[] = [];
  const a = aedes as unknown as { published: (p: Published, c: { id: string } | null, cb: (err?: Error) => void) => void };
  const inner = a.published;
  a.published = function (packet, client, cb) {
    if (packet.topic.startsWith(prefix)) published.push({ packet, clientId: client?.id ?? null });
    inner.call(this, packet, client, cb);
  };
  aedes.on("publish", (packet, client) => {
    if (packet.topic.startsWith(prefix)) events.push({ packet: packet as unknown as Published, clientId: client?.id ?? null });
  });
  return { published, events };
}

/**
 * Count the calls that reach aedes' own `publish` (its step runner) for topics under `prefix`.
 * Install before the broker starts: lean-publish.ts takes aedes' `publish` for the rest then.
 */
export function countAedesSeries(prefix: string): { calls: () => number; restore: () => void } {
  const proto = Aedes.prototype as unknown as { publish: (this: Aedes, packet: { topic?: string }, ...rest: unknown[]) => void };
  const original = proto.publish;
  let calls = 0;
  proto.publish = function (packet, ...rest) {
    if (packet.topic?.startsWith(prefix)) calls++;
    return original.call(this, packet, ...rest);
  };
  return { calls: () => calls, restore: () => void (proto.publish = original) };
}


export function publishVia(aedes: Aedes, packet: object): Promise<Error | undefined> {
  return new Promise((resolve) => (aedes.publish as unknown as PublishFn)(packet, (err) => resolve(err ?? undefined)));
}

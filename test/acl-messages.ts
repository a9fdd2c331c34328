// The acl plugin's reference config and generated messages, shared by its twin
// test (plugin-acl.test.ts) and the C and Rust builds' differential test.
import type { HarnessMessage } from "../host/harness.js";
import { Rng, randomIdentity, randomTopic } from "./differential.js";

export const ACL_CONFIG = {
  default: "deny",
  onDeniedPublish: "drop",
  rules: [
    { topic: "public/#", access: "readwrite" },
    { topic: "devices/%c/#", access: "readwrite" },
    { topic: "users/%u/inbox/+", access: "read" },
    { topic: "users/%u/outbox", access: "write" },
    { topic: "shared/%u/%c", access: "readwrite" },
    { username: "ops", topic: "#", access: "read" },
    { clientId: "gateway", topic: "devices/+/cmd", access: "write" },
    { topic: "devices/+/secret", access: "deny" },
    { username: "*", topic: "any-user/#", access: "read" },
  ],
};

// Init reads the config through the SDK's Config, whose every lookup rescans
// the whole document: these 10 rules need ~30 M fuel to load, over the 10 M default.
export const ACL_LIMITS = { fuel: 100_000_000 };

const USERS = ["alice", "bob", "ops", "a/b", "x+y", "#", "", "ü", "%u", "very-long-user-name-".repeat(6)];
const CLIENTS = ["dev-1", "dev-2", "gateway", "a/b", "+", "c#", "", "é", "%c", "client-with-a-rather-long-identifier-0123456789"];

export function aclMessages(seed: number, count: number): HarnessMessage[] {
  const rng = new Rng(seed);
  const out: HarnessMessage[] = [];
  for (let i = 0; i < count; i++) {
    const username = rng.chance(0.15) ? null : randomIdentity(rng, USERS);
    const clientId = randomIdentity(rng, CLIENTS);
    const own = (s: string | null) => (rng.chance(0.5) && s ? s : rng.pick(["dev-1", "alice", "x", "+", "#"]));
    const topic = rng.pick([
      () => `devices/${own(clientId)}/${rng.pick(["status", "secret", "cmd", "a/b"])}`,
      () => `users/${own(username)}/${rng.pick(["inbox/1", "inbox", "outbox", "inbox/+"])}`,
      () => `shared/${own(username)}/${own(clientId)}`,
      () => `public/${rng.pick(["x", "#", "+/y", ""])}`,
      () => rng.pick(["#", "+/+", "devices/#", "devices/+/status", "$SYS/#", "any-user/z", "a/#/b", "sport/+tennis"]),
      () => randomTopic(rng, [["devices", "users", "public", "shared"], ["dev-1", "alice", "+"], ["status", "#", "inbox"]]),
    ])();
    const hook = rng.pick(["subscribe", "publish", "publish", "deliver"] as const);
    out.push({ hook, topic, username, clientId, qos: rng.int(3), peer: "publisher" });
  }
  return out;
}

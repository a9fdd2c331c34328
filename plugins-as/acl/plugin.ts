// acl: topic access control by username / client id, like Mosquitto's acl_file.
// Publishes are checked against each rule's filter; subscriptions must lie
// within it ("sensors/#" allows subscribing to "sensors/+/temp", not the
// reverse). A matching "deny" rule wins; otherwise any matching rule granting the access
// allows it; otherwise "default" decides. %u and %c in a rule's topic stand for
// the client's username and client id (a rule is skipped for clients whose
// username or id contains '/', '+' or '#', so they cannot widen it).
import { Config, Hook, Message, ReasonCode, Verdict, declareIdle, deny, drop, log, validTopicFilter } from "../sdk";
export * from "../sdk/exports";

const READ: i32 = 1;
const WRITE: i32 = 2;
const DENY: i32 = 4;

class Rule {
  constructor(
    public username: string | null,
    public clientId: string | null,
    public topic: string,
    public access: i32,
    public templated: bool,
  ) {}
}

let rules: Rule[] = [];
let defaultAllow = false;
let disconnectOnDeniedPublish = false;
let hasDenyRules = false;

function parseAccess(s: string): i32 {
  if (s == "read") return READ;
  if (s == "write") return WRITE;
  if (s == "readwrite") return READ | WRITE;
  if (s == "deny") return DENY;
  return 0;
}

function optionalString(config: Config, path: string): string | null {
  if (!config.has(path)) return null;
  const s = config.string(path, "*");
  return s == "*" ? null : s;
}

export function init(config: Config): bool {
  rules = [];
  hasDenyRules = false;
  const n = config.arrayLength("rules");
  if (n < 0) {
    log.error("config.rules must be an array");
    return false;
  }
  for (let i = 0; i < n; i++) {
    const base = "rules." + i.toString();
    const accessName = config.string(base + ".access", "readwrite");
    const access = parseAccess(accessName);
    if (access == 0) {
      log.error(base + ".access must be read, write, readwrite or deny, not " + accessName);
      return false;
    }
    const topic = config.string(base + ".topic", "");
    if (!validTopicFilter(topic)) {
      log.error(base + ".topic must be an MQTT topic filter");
      return false;
    }
    if (access == DENY) hasDenyRules = true;
    const templated = topic.includes("%u") || topic.includes("%c");
    rules.push(new Rule(optionalString(config, base + ".username"), optionalString(config, base + ".clientId"), topic, access, templated));
  }
  const def = config.string("default", "deny");
  if (def != "allow" && def != "deny") {
    log.error("config.default must be allow or deny");
    return false;
  }
  defaultAllow = def == "allow";
  const action = config.string("onDeniedPublish", "drop");
  if (action != "drop" && action != "disconnect") {
    log.error("config.onDeniedPublish must be drop or disconnect");
    return false;
  }
  disconnectOnDeniedPublish = action == "disconnect";
  // Without deny rules onDeliver always answers Continue unchanged (a delivery
  // follows a subscription this plugin already allowed): the host need not call it.
  if (!hasDenyRules) declareIdle(Hook.deliver);
  // With default allow and no deny rule, allowed() grants every subscription and
  // publish too: the broker need not call them either (no Wasm call per SUBSCRIBE).
  if (defaultAllow && !hasDenyRules) {
    declareIdle(Hook.subscribe);
    declareIdle(Hook.publish);
  }
  return true;
}

// A rule's optional string is present. By address: AssemblyScript's `!== null` on a
// string is a content comparison (two runtime calls per rule and message).
// @ts-ignore: decorator
@inline function isSet(s: string | null): bool {
  return changetype<usize>(s) != 0;
}

function allowed(msg: Message, need: i32, subscribing: bool): bool {
  let granted = false;
  for (let i = 0, n = rules.length; i < n; i++) {
    const rule = unchecked(rules[i]);
    const user = rule.username;
    if (isSet(user) && !(msg.hasUsername && msg.usernameEquals(user!))) continue;
    const id = rule.clientId;
    if (isSet(id) && !msg.clientIdEquals(id!)) continue;
    let matched: bool;
    if (rule.templated) {
      // A SUBSCRIBE compares a filter with the rule in place (no expanded copy): see topicWithinTemplate
      matched = subscribing ? msg.topicWithinTemplate(rule.topic) : msg.topicMatchesTemplate(rule.topic);
    } else {
      matched = subscribing ? msg.topicWithin(rule.topic) : msg.topicMatches(rule.topic);
    }
    if (!matched) continue;
    if (rule.access & DENY) return false;
    if (rule.access & need) granted = true;
  }
  return granted || defaultAllow;
}

export function onSubscribe(msg: Message): i32 {
  // MQTT 5 subscribers get SUBACK 0x87 Not authorized for the filter
  return allowed(msg, READ, true) ? Verdict.Continue : deny(ReasonCode.NotAuthorized);
}

export function onPublish(msg: Message): i32 {
  if (allowed(msg, WRITE, false)) return Verdict.Continue;
  // MQTT 5 publishers get PUBACK/PUBREC 0x87 either way; 3.1.1 ones are dropped silently or disconnected
  return disconnectOnDeniedPublish ? deny(ReasonCode.NotAuthorized) : drop(ReasonCode.NotAuthorized);
}

// A subscription granted by a broad rule ("#" for ops) can still match topics a
// narrower deny rule forbids: each delivery is checked against the deny rules.
export function onDeliver(msg: Message): i32 {
  if (!hasDenyRules) return Verdict.Continue;
  return allowed(msg, READ, false) ? Verdict.Continue : Verdict.Drop;
}

// router, native twin of plugin.ts: same routes, same rewrites, same verdicts.
import { Config, Message, Verdict, log, publish, validTopicFilter, validTopicName } from "../../host/native/index.js";

const EQUALS_NONE = 0;
const EQUALS_NUMBER = 1;
const EQUALS_STRING = 2;
const EQUALS_BOOL = 3;

/** A "to" topic: literal text around wildcard captures of the "from" filter. */
class Template {
  constructor(
    public literals: string[], // one more than captures
    public captures: number[], // capture index (0-based) for each placeholder
  ) {}

  expand(msg: Message, filter: string): string {
    let out = this.literals[0]!;
    for (let i = 0, n = this.captures.length; i < n; i++) {
      const captured = msg.topicCapture(filter, this.captures[i]!);
      if (captured !== null) out += captured;
      out += this.literals[i + 1]!;
    }
    return out;
  }
}

class Condition {
  field: string = "";
  above: number = NaN;
  below: number = NaN;
  equalsKind: number = EQUALS_NONE;
  equalsNumber: number = 0;
  equalsString: string = "";
  equalsBool: boolean = false;
}

class Route {
  constructor(
    public from: string,
    public to: Template,
    public when: Condition | null,
    public qos: number, // -1: the message's own
    public retain: boolean,
    public keepOriginal: boolean,
  ) {}
}

class Rewrite {
  constructor(
    public from: string,
    public to: Template,
  ) {}
}

let routes: Route[] = [];
let rewrites: Rewrite[] = [];

function wildcardCount(filter: string): number {
  let n = 0;
  for (let i = 0; i < filter.length; i++) {
    const c = filter.charCodeAt(i);
    if (c == 0x2b || c == 0x23) n++;
  }
  return n;
}

function literalIsTopicText(s: string): boolean {
  return !s.includes("+") && !s.includes("#") && !s.includes("\u0000") && !s.includes("{") && !s.includes("}");
}

/** Parse "alerts/{1}/{#}" against its "from" filter, or null with the reason logged. */
function parseTemplate(where: string, template: string, from: string): Template | null {
  if (template.length == 0) {
    log.error(where + " must be a non-empty topic");
    return null;
  }
  const wildcards = wildcardCount(from);
  const literals: string[] = [];
  const captures: number[] = [];
  let start = 0;
  while (true) {
    const open = template.indexOf("{", start);
    if (open < 0) break;
    const close = template.indexOf("}", open);
    if (close < 0) {
      log.error(where + ": unclosed '{'");
      return null;
    }
    const name = template.substring(open + 1, close);
    let index = -1;
    if (name == "#") {
      if (!from.endsWith("#")) {
        log.error(where + ": {#} needs a \"from\" filter ending in '#'");
        return null;
      }
      index = wildcards - 1;
    } else if (name.length > 0 && name.length <= 3) {
      index = 0;
      for (let i = 0; i < name.length; i++) {
        const c = name.charCodeAt(i);
        if (c < 0x30 || c > 0x39) {
          index = -1;
          break;
        }
        index = index * 10 + (c - 0x30);
      }
      index -= 1; // {1} is the first capture
    }
    if (index < 0 || index >= wildcards) {
      log.error(where + ": {" + name + "} is not a wildcard of " + from);
      return null;
    }
    literals.push(template.substring(start, open));
    captures.push(index);
    start = close + 1;
  }
  literals.push(template.substring(start));
  for (let i = 0; i < literals.length; i++) {
    if (!literalIsTopicText(literals[i]!)) {
      log.error(where + " must be a topic name: no '+', '#', NUL or stray braces");
      return null;
    }
  }
  return new Template(literals, captures);
}

function parseFilter(config: Config, where: string): string | null {
  const from = config.string(where, "");
  if (!validTopicFilter(from)) {
    log.error(where + " must be an MQTT topic filter");
    return null;
  }
  return from;
}

// A JSON value's kind, told apart with two different fallbacks (Config has no type query).
function isString(config: Config, path: string): boolean {
  return config.string(path, "a") == config.string(path, "b");
}
function isBool(config: Config, path: string): boolean {
  return config.bool(path, false) == config.bool(path, true);
}

/** Logs and answers true when the key is present but not a boolean. */
function notBool(config: Config, path: string): boolean {
  if (!config.has(path) || isBool(config, path)) return false;
  log.error(path + " must be true or false");
  return true;
}

function parseCondition(config: Config, where: string): Condition | null {
  const when = new Condition();
  when.field = config.string(where + ".field", "");
  if (when.field.length == 0) {
    log.error(where + ".field must name a JSON field of the payload");
    return null;
  }
  let tests = 0;
  if (config.has(where + ".above")) {
    when.above = config.number(where + ".above", NaN);
    if (isNaN(when.above)) {
      log.error(where + ".above must be a number");
      return null;
    }
    tests++;
  }
  if (config.has(where + ".below")) {
    when.below = config.number(where + ".below", NaN);
    if (isNaN(when.below)) {
      log.error(where + ".below must be a number");
      return null;
    }
    tests++;
  }
  const equals = where + ".equals";
  if (config.has(equals)) {
    if (!isNaN(config.number(equals, NaN))) {
      when.equalsKind = EQUALS_NUMBER;
      when.equalsNumber = config.number(equals, 0);
    } else if (isString(config, equals)) {
      when.equalsKind = EQUALS_STRING;
      when.equalsString = config.string(equals, "");
    } else if (isBool(config, equals)) {
      when.equalsKind = EQUALS_BOOL;
      when.equalsBool = config.bool(equals, false);
    } else {
      log.error(equals + " must be a number, a string or a boolean");
      return null;
    }
    tests++;
  }
  if (tests == 0) {
    log.error(where + " needs above, below or equals");
    return null;
  }
  return when;
}

function parseRoute(config: Config, base: string): Route | null {
  const from = parseFilter(config, base + ".from");
  if (from === null) return null;
  const to = parseTemplate(base + ".to", config.string(base + ".to", ""), from);
  if (to === null) return null;
  let when: Condition | null = null;
  if (config.has(base + ".when")) {
    when = parseCondition(config, base + ".when");
    if (when === null) return null;
  }
  let qos = -1;
  if (config.has(base + ".qos")) {
    const q = config.number(base + ".qos", -1);
    if (q != 0 && q != 1 && q != 2) {
      log.error(base + ".qos must be 0, 1 or 2");
      return null;
    }
    qos = q;
  }
  if (notBool(config, base + ".retain") || notBool(config, base + ".keepOriginal")) return null;
  return new Route(from, to, when, qos, config.bool(base + ".retain", false), config.bool(base + ".keepOriginal", true));
}

export function init(config: Config): boolean {
  routes = [];
  rewrites = [];
  const routeCount = config.length("routes");
  const rewriteCount = config.length("rewrites");
  // (An object has a member count but no element 0.)
  if ((config.has("routes") && (routeCount < 0 || (routeCount > 0 && !config.has("routes.0")))) ||
      (config.has("rewrites") && (rewriteCount < 0 || (rewriteCount > 0 && !config.has("rewrites.0"))))) {
    log.error("config.routes and config.rewrites must be arrays");
    return false;
  }
  if (routeCount <= 0 && rewriteCount <= 0) {
    log.error("config needs at least one entry in routes or rewrites");
    return false;
  }
  for (let i = 0; i < routeCount; i++) {
    const route = parseRoute(config, "routes." + i.toString());
    if (route === null) return false;
    routes.push(route);
  }
  for (let i = 0; i < rewriteCount; i++) {
    const base = "rewrites." + i.toString();
    const from = parseFilter(config, base + ".from");
    if (from === null) return false;
    const to = parseTemplate(base + ".to", config.string(base + ".to", ""), from);
    if (to === null) return false;
    rewrites.push(new Rewrite(from, to));
  }
  return true;
}

function conditionHolds(when: Condition, msg: Message): boolean {
  if (!isNaN(when.above) || !isNaN(when.below) || when.equalsKind == EQUALS_NUMBER) {
    const value = msg.jsonNumber(when.field, NaN);
    if (isNaN(value)) return false;
    if (!isNaN(when.above) && !(value > when.above)) return false;
    if (!isNaN(when.below) && !(value < when.below)) return false;
    if (when.equalsKind == EQUALS_NUMBER) return value == when.equalsNumber;
  }
  if (when.equalsKind == EQUALS_STRING) {
    const value = msg.jsonString(when.field, null);
    return value !== null && value == when.equalsString;
  }
  if (when.equalsKind == EQUALS_BOOL) return msg.jsonBool(when.field, !when.equalsBool) == when.equalsBool;
  return true;
}

export function onPublish(msg: Message): number {
  let keep = true;
  for (let i = 0, n = routes.length; i < n; i++) {
    const route = routes[i]!;
    if (!msg.topicMatches(route.from)) continue;
    const when = route.when;
    if (when !== null && !conditionHolds(when, msg)) continue;
    const topic = route.to.expand(msg, route.from);
    // An empty capture can expand to an invalid name ("{1}" of "old//x"); the host would
    // refuse it as invalid output (a trap), so a route that cannot fill its topic is skipped.
    if (!validTopicName(topic) || !publish(topic, msg.payload, route.qos < 0 ? msg.qos : route.qos, route.retain)) {
      log.warn("routes." + i.toString() + ": could not publish to \"" + topic + "\"");
    }
    if (!route.keepOriginal) keep = false;
  }
  if (!keep) return Verdict.Drop;
  for (let i = 0, n = rewrites.length; i < n; i++) {
    const rewrite = rewrites[i]!;
    if (!msg.topicMatches(rewrite.from)) continue;
    const to = rewrite.to.expand(msg, rewrite.from);
    if (validTopicName(to)) msg.setTopic(to);
    else log.warn("rewrites." + i.toString() + ": \"" + to + "\" is not a valid topic name; the message keeps its topic");
    break;
  }
  return Verdict.Continue;
}

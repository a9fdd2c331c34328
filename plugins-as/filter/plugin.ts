// filter: drop (or deny) JSON readings whose numeric fields are outside a range.
// Each rule applies to the topics its filter matches; a message must satisfy
// every rule that applies to it. Non-JSON payloads and missing fields on a
// matching topic follow "onInvalid" / "onMissing".
import { Config, Message, ReasonCode, Verdict, log, validTopicFilter } from "../sdk";
export * from "../sdk/exports";

class Rule {
  constructor(
    public topic: string,
    public field: string,
    public min: f64,
    public max: f64,
  ) {}
}

let rules: Rule[] = [];
let rejectVerdict: i32 = Verdict.Drop;
let dropMissing = true;
let dropInvalid = true;

function choice(config: Config, key: string, fallback: string, a: string, b: string): string | null {
  const value = config.string(key, fallback);
  if (value != a && value != b) {
    log.error("config." + key + " must be " + a + " or " + b);
    return null;
  }
  return value;
}

export function init(config: Config): bool {
  rules = [];
  const n = config.arrayLength("rules");
  if (n < 1) {
    log.error("config.rules must be a non-empty array");
    return false;
  }
  for (let i = 0; i < n; i++) {
    const base = "rules." + i.toString();
    const topic = config.string(base + ".topic", "#");
    if (!validTopicFilter(topic)) {
      log.error(base + ".topic must be an MQTT topic filter");
      return false;
    }
    const field = config.string(base + ".field", "");
    if (field.length == 0) {
      log.error(base + ".field is required");
      return false;
    }
    const min = config.number(base + ".min", -Infinity);
    const max = config.number(base + ".max", Infinity);
    if (!(min <= max)) {
      log.error(base + ": min must not exceed max");
      return false;
    }
    rules.push(new Rule(topic, field, min, max));
  }
  const action = choice(config, "action", "drop", "drop", "deny");
  const missing = choice(config, "onMissing", "drop", "drop", "pass");
  const invalid = choice(config, "onInvalid", "drop", "drop", "pass");
  if (action === null || missing === null || invalid === null) return false;
  // MQTT 5 publishers of a rejected reading get this reason code in PUBACK/PUBREC
  // (0x99 Payload format invalid by default; 0 = an ordinary acknowledgement for drops).
  const code = <i32>config.number("reasonCode", <f64>ReasonCode.PayloadFormatInvalid);
  if (!(code == 0 || code == 0x80 || code == 0x83 || code == 0x87 || code == 0x97 || code == 0x99)) {
    log.error("config.reasonCode must be 0 or a PUBACK reason code: 128, 131, 135, 151 or 153");
    return false;
  }
  rejectVerdict = (action == "deny" ? Verdict.Deny : Verdict.Drop) | (code << 8);
  dropMissing = missing == "drop";
  dropInvalid = invalid == "drop";
  return true;
}

export function onPublish(msg: Message): i32 {
  let checkedJson = false;
  for (let i = 0, n = rules.length; i < n; i++) {
    const rule = unchecked(rules[i]);
    if (!msg.topicMatches(rule.topic)) continue;
    if (!checkedJson) {
      if (!msg.jsonValid()) return dropInvalid ? rejectVerdict : Verdict.Continue;
      checkedJson = true;
    }
    const value = msg.jsonNumber(rule.field, NaN);
    if (isNaN(value)) {
      if (dropMissing) return rejectVerdict;
      continue;
    }
    if (value < rule.min || value > rule.max) return rejectVerdict;
  }
  return Verdict.Continue;
}

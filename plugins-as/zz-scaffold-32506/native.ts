// zz-scaffold-32506, native twin of plugin.ts: same config, same verdicts, same logs.
import { Config, Message, Verdict, log, validTopicFilter } from "../../host/native/index.js";

let topic = "#";
let field = "value";
let max = 0;

export function init(config: Config): boolean {
  topic = config.string("topic", "#");
  if (!validTopicFilter(topic)) {
    log.error("config.topic must be an MQTT topic filter, not " + topic);
    return false;
  }
  field = config.string("field", "value");
  if (field.length == 0) {
    log.error("config.field must not be empty");
    return false;
  }
  max = config.number("max", NaN);
  if (isNaN(max)) {
    log.error("config.max is required and must be a number");
    return false;
  }
  return true;
}

export function onPublish(msg: Message): number {
  if (!msg.topicMatches(topic)) return Verdict.Continue;
  // ABI v2 reads MQTT 5 fields in place: a publisher marked "trusted" skips the check.
  if (msg.userPropertyEquals("trusted", "true")) return Verdict.Continue;
  // To tell an MQTT 5 publisher why in its PUBACK, return drop(ReasonCode.PayloadFormatInvalid)
  // (import drop and ReasonCode); a 3.1.1 publisher is still acknowledged as usual.
  if (msg.jsonNumber(field, NaN) > max) {
    log.debug("dropped " + msg.topic + ": " + field + " above max");
    return Verdict.Drop;
  }
  return Verdict.Continue;
}

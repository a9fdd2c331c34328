// zz-scaffold-32506: drops JSON readings whose numeric field (config "field", default
// "value") exceeds config "max", on the topics config "topic" matches. Messages
// that are not JSON or lack the field pass untouched. A starting point: edit
// onPublish, rebuild with `npm run build:plugins -- zz-scaffold-32506`, and a running
// broker hot-reloads the new build. Keep native.ts (the twin) in step.
import { Config, Message, Verdict, log, validTopicFilter } from "../sdk";
export * from "../sdk/exports";

let topic = "#";
let field = "value";
let max: f64 = 0;

export function init(config: Config): bool {
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

export function onPublish(msg: Message): i32 {
  if (!msg.topicMatches(topic)) return Verdict.Continue;
  // ABI v2 reads MQTT 5 fields in place: a publisher marked "trusted" skips the check.
  if (msg.userPropertyEquals("trusted", "true")) return Verdict.Continue;
  // To tell an MQTT 5 publisher why in its PUBACK, return drop(ReasonCode.PayloadFormatInvalid)
  // (import drop and ReasonCode); a 3.1.1 publisher is still acknowledged as usual.
  // A payload that is not JSON, or lacks the field, reads as NaN, and NaN > max is false.
  if (msg.jsonNumber(field, NaN) > max) {
    log.debug("dropped " + msg.topic + ": " + field + " above max");
    return Verdict.Drop;
  }
  return Verdict.Continue;
}

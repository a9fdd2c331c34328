// Test-only native plugin with a connect hook: lets clients in when their
// password equals config.password. The ops tests use it where they need "an
// authentication plugin" without paying for a Wasm build.
import { Config, Message, ReturnCode, Verdict, deny } from "../host/native/index.js";

let password = "";

export function init(config: Config): boolean {
  password = config.string("password", "");
  return password.length > 0;
}

export function onConnect(msg: Message): number {
  if (Buffer.from(msg.password).toString("utf8") === password) return Verdict.Continue;
  return deny(ReturnCode.BadUsernameOrPassword);
}

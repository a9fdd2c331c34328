import type { LimitName } from "../ops/stats.js";

/** A client broke a limit; the message names it (observe.ts logs it on the disconnect line). */
export class LimitError extends Error {
  constructor(
    readonly limit: LimitName,
    message: string,
  ) {
    super(`${limit}: ${message}`);
    this.name = "LimitError";
  }
}

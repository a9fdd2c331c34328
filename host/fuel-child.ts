/**
 * The child-process side of fuel-offload.ts: instruments modules with binaryen,
 * one message at a time, so binaryen's heap lives and dies with this process.
 */
import { instrumentFuel, type FuelInstrumentResult } from "./fuel.js";

export interface InstrumentRequest {
  id: number;
  wasm: Uint8Array;
}

export type InstrumentReply =
  | ({ id: number; ok: true } & FuelInstrumentResult)
  | { id: number; ok: false; message: string };

const send = process.send?.bind(process);
if (!send) throw new Error("fuel-child.js runs as a child process with an IPC channel (see fuel-offload.ts)");

process.on("message", ({ id, wasm }: InstrumentRequest) => {
  let reply: InstrumentReply;
  try {
    reply = { id, ok: true, ...instrumentFuel(wasm) };
  } catch (err) {
    reply = { id, ok: false, message: err instanceof Error ? err.message : String(err) };
  }
  send(reply);
});
// The broker went away (or closed the channel): nothing more will come.
process.on("disconnect", () => process.exit(0));

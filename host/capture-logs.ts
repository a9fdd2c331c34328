import type { PluginServices } from "./instance.js";

/** Collect what a plugin logs at warn or above while it initialises, for the error message. */
export function captureLogs(services: PluginServices): { text(): string; stop(): void } {
  const lines: string[] = [];
  const original = services.log;
  services.log = (level, message) => {
    if (level >= 3 && lines.length < 5) lines.push(message);
    original(level, message);
  };
  return {
    text: () => (lines.length ? `: ${lines.join("; ")}` : ""),
    stop: () => {
      services.log = original;
    },
  };
}

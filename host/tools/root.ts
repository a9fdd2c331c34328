import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (tools run from dist/host/tools/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

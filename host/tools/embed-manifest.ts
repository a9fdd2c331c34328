import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { embedManifest, ManifestError, parseManifestSource } from "../manifest.js";

/** The manifest source beside a plugin's entry (name, version, description, configSchema). */
export const MANIFEST_FILE = "manifest.json";

/**
 * Embed the manifest from `manifestFile` into the freshly built `wasmFile`
 * (in place). Returns why it could not, or null. A plugin without a manifest
 * file builds without a manifest (its config is then not schema-checked); a
 * broken manifest fails the build and removes the output, so no half-described
 * build is left to deploy.
 */
export function embedManifestFile(wasmFile: string, manifestFile: string): string | null {
  if (!existsSync(manifestFile)) return null;
  try {
    const source = parseManifestSource(readFileSync(manifestFile, "utf8"), manifestFile);
    const tmp = `${wasmFile}.tmp-${process.pid}`;
    writeFileSync(tmp, embedManifest(readFileSync(wasmFile), source));
    renameSync(tmp, wasmFile);
    return null;
  } catch (err) {
    rmSync(wasmFile, { force: true });
    if (err instanceof ManifestError) return err.message;
    throw err;
  }
}

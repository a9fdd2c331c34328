/**
 * The gate every Wasm build passes before it is compiled: the sha256 pin, the
 * signature and trust policy, the manifest, and the plugin's config against the
 * manifest's schema. PluginSlot calls it wherever bytes become a factory — start,
 * hot reload, admin upload, dry run — so no path can skip it.
 */
import { PluginError } from "./instance.js";
import { configProblem, ManifestError, readManifest, type PluginManifest } from "./manifest.js";
import { checkTrust, SignatureError, type TrustPolicy, type TrustStatus } from "./signing.js";
import { WasmFormatError } from "./wasm-binary.js";

export interface Admission {
  trust: TrustStatus;
  manifest: PluginManifest | null;
}

export interface AdmissionRules {
  /** Refuse any build whose sha256 (of the whole file) differs. */
  sha256?: string;
  trust?: TrustPolicy;
  config?: Record<string, unknown>;
}

export function admitBuild(name: string, bytes: Uint8Array, rules: AdmissionRules): Admission {
  try {
    const trust = checkTrust(bytes, rules.trust, rules.sha256);
    const manifest = readManifest(bytes);
    const problem = configProblem(manifest, rules.config ?? {});
    if (problem) throw new ManifestError(problem);
    return { trust, manifest };
  } catch (err) {
    if (err instanceof SignatureError || err instanceof ManifestError || err instanceof WasmFormatError) {
      throw new PluginError(name, `refused: ${err.message}`);
    }
    throw err;
  }
}

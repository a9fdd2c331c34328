// certauth, native twin of plugin.ts: same allow lists, same verdicts, same log lines.
import { Config, Message, ReturnCode, Verdict, deny, log } from "../../host/native/index.js";

let fingerprints = new Set<string>();
let commonNames = new Set<string>();
let requireCertificate = true;

/** "AB:CD:…" or "abcd…" → 64 lowercase hex digits, or "" when it is not a SHA-256 fingerprint. */
function normalizeFingerprint(s: string): string {
  const hex = s.replaceAll(":", "").toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : "";
}

export function init(config: Config): boolean {
  fingerprints = new Set<string>();
  commonNames = new Set<string>();
  requireCertificate = config.bool("requireCertificate", true);
  const nf = config.arrayLength("fingerprints");
  const nc = config.arrayLength("commonNames");
  if (nf < 0) {
    log.error('config: "fingerprints" must be an array of SHA-256 fingerprints');
    return false;
  }
  if (nc < 0) {
    log.error('config: "commonNames" must be an array of strings');
    return false;
  }
  for (let i = 0; i < nf; i++) {
    const fp = normalizeFingerprint(config.string(`fingerprints.${i}`, ""));
    if (fp.length == 0) {
      log.error(`config: fingerprints.${i} is not a SHA-256 fingerprint (64 hex digits, ':' allowed)`);
      return false;
    }
    fingerprints.add(fp);
  }
  for (let i = 0; i < nc; i++) {
    const cn = config.string(`commonNames.${i}`, "");
    if (cn.length == 0) {
      log.error(`config: commonNames.${i} must be a non-empty string`);
      return false;
    }
    commonNames.add(cn);
  }
  if (fingerprints.size == 0 && commonNames.size == 0) {
    log.error('config: give at least one entry in "fingerprints" or "commonNames"');
    return false;
  }
  return true;
}

export function onConnect(msg: Message): number {
  const cert = msg.certificate();
  if (cert === null) {
    if (!requireCertificate) return Verdict.Continue;
    log.info(`refused ${msg.clientId}: no client certificate`);
    return deny(ReturnCode.NotAuthorized);
  }
  if (fingerprints.has(cert.fingerprint) || commonNames.has(cert.subjectCommonName)) return Verdict.Continue;
  log.info(`refused ${msg.clientId}: certificate ${cert.fingerprint} (CN=${cert.subjectCommonName}) is not allowed`);
  return deny(ReturnCode.NotAuthorized);
}

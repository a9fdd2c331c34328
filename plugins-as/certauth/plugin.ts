// certauth: let a client in only when the certificate it presented over mutual
// TLS is on an allow list — by SHA-256 fingerprint (pins one device's exact
// certificate) or by subject common name. The TLS listener has already
// verified the chain, validity and revocation; this plugin decides which of
// the trusted certificates may connect. Native twin: native.ts.
import { Config, Message, ReturnCode, Verdict, deny, log } from "../sdk";
export * from "../sdk/exports";

let fingerprints = new Set<string>();
let commonNames = new Set<string>();
let requireCertificate = true;

function isHex(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66);
}

/** "AB:CD:…" or "abcd…" → 64 lowercase hex digits, or "" when it is not a SHA-256 fingerprint. */
function normalizeFingerprint(s: string): string {
  const hex = s.replaceAll(":", "").toLowerCase();
  if (hex.length != 64) return "";
  for (let i = 0; i < hex.length; i++) if (!isHex(hex.charCodeAt(i))) return "";
  return hex;
}

export function init(config: Config): bool {
  fingerprints = new Set<string>();
  commonNames = new Set<string>();
  requireCertificate = config.bool("requireCertificate", true);
  const nf = config.arrayLength("fingerprints");
  const nc = config.arrayLength("commonNames");
  if (nf < 0) {
    log.error("config: \"fingerprints\" must be an array of SHA-256 fingerprints");
    return false;
  }
  if (nc < 0) {
    log.error("config: \"commonNames\" must be an array of strings");
    return false;
  }
  for (let i = 0; i < nf; i++) {
    const raw = config.string("fingerprints." + i.toString(), "");
    const fp = normalizeFingerprint(raw);
    if (fp.length == 0) {
      log.error("config: fingerprints." + i.toString() + " is not a SHA-256 fingerprint (64 hex digits, ':' allowed)");
      return false;
    }
    fingerprints.add(fp);
  }
  for (let i = 0; i < nc; i++) {
    const cn = config.string("commonNames." + i.toString(), "");
    if (cn.length == 0) {
      log.error("config: commonNames." + i.toString() + " must be a non-empty string");
      return false;
    }
    commonNames.add(cn);
  }
  if (fingerprints.size == 0 && commonNames.size == 0) {
    log.error("config: give at least one entry in \"fingerprints\" or \"commonNames\"");
    return false;
  }
  return true;
}

export function onConnect(msg: Message): i32 {
  const cert = msg.certificate();
  if (cert === null) {
    if (!requireCertificate) return Verdict.Continue;
    log.info("refused " + msg.clientId + ": no client certificate");
    return deny(ReturnCode.NotAuthorized);
  }
  if (fingerprints.has(cert.fingerprint) || commonNames.has(cert.subjectCommonName)) return Verdict.Continue;
  log.info("refused " + msg.clientId + ": certificate " + cert.fingerprint + " (CN=" + cert.subjectCommonName + ") is not allowed");
  return deny(ReturnCode.NotAuthorized);
}

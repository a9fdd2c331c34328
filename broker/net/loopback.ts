import { BlockList, isIP } from "node:net";

/** 127.0.0.0/8 and ::1; BlockList also matches their IPv4-mapped forms (::ffff:127.0.0.1) and any spelling of ::1. */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * Addresses only this machine can reach. Judges the address, not its text: a
 * name such as "127.evil.example" is not loopback, whatever it starts with.
 * "localhost" counts (RFC 6761 reserves it for loopback); any other name is
 * treated as public, since what it resolves to can change. "0.0.0.0" and "::"
 * are every interface, so public.
 */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h === "localhost" || h === "localhost.") return true;
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  const family = isIP(h);
  return family !== 0 && LOOPBACK.check(h, family === 6 ? "ipv6" : "ipv4");
}

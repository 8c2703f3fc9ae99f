import { isIPv4, isIPv6 } from "node:net";

/**
 * Finds IP addresses in text (SPEC L13). IPv4: four dotted decimal octets that `net.isIPv4`
 * accepts, not part of a longer dotted number (so a firmware version such as 9.2.1 or an OID
 * is not one). IPv6: a run of hex digits, colons and dots with at least two colons, not glued
 * to other word characters, that `net.isIPv6` accepts (so a time such as 10:11:12 is not one,
 * but ::1, fe80::1 and ::ffff:127.0.0.2 are).
 */
export function findIpAddresses(text: string): string[] {
  const found = new Set<string>();
  for (const match of text.matchAll(/(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d]|\.\d)/g)) {
    if (isIPv4(match[1]!)) found.add(match[1]!);
  }
  for (const match of text.matchAll(/(?<![0-9A-Za-z_:.])([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)(?![0-9A-Za-z_:])/g)) {
    const candidate = match[1]!.replace(/\.$/, "");
    if (isIPv6(candidate)) found.add(candidate);
  }
  return [...found];
}

/** The lines of `text` holding an IP address, with the addresses found, for a readable failure. */
export function linesWithIpAddresses(text: string, limit = 20): string[] {
  const hits: string[] = [];
  for (const line of text.split("\n")) {
    const addresses = findIpAddresses(line);
    if (addresses.length > 0) hits.push(`${addresses.join(", ")} in: ${line.slice(0, 500)}`);
    if (hits.length >= limit) break;
  }
  return hits;
}

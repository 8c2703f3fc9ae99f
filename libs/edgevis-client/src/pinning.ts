import { createHash, X509Certificate } from "node:crypto";
import { checkServerIdentity, type PeerCertificate } from "node:tls";

/** The base64 SHA-256 of a certificate's public key (SPKI), as CLS prints it at start. */
export function spkiPinOfPem(certPem: string | Buffer): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

/**
 * A TLS identity check that, after the usual host-name check, accepts only a certificate
 * whose public key matches one of the pins, so a man-in-the-middle certificate is refused
 * even when some trusted authority signed it (SPEC L12).
 */
export function pinnedIdentityCheck(pins: readonly string[]) {
  return (host: string, cert: PeerCertificate): Error | undefined => {
    const hostError = checkServerIdentity(host, cert);
    if (hostError) return hostError;
    const pin = spkiPinOfPem(cert.raw);
    if (!pins.includes(pin)) return new Error(`certificate public key ${pin} is not pinned`);
    return undefined;
  };
}

import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOrCreateSelfSignedTls, spkiPin, type TlsMaterial } from "@cls/server";
import { pinnedIdentityCheck, spkiPinOfPem } from "./pinning.js";

const dirs = [mkdtempSync(join(tmpdir(), "cls-pin-a-")), mkdtempSync(join(tmpdir(), "cls-pin-b-"))];
let material: TlsMaterial;
let other: TlsMaterial;
let server: tls.Server;
let port: number;

beforeAll(async () => {
  material = await loadOrCreateSelfSignedTls(dirs[0]!);
  other = await loadOrCreateSelfSignedTls(dirs[1]!);
  server = tls.createServer({ cert: material.cert, key: material.key }, (socket) => socket.end("hello"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Connects to the test server as an EdgeVis Server would; resolves "connected" or the TLS error's message. */
function connect(options: { pins: string[]; servername?: string; ca?: string }): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: options.servername ?? "localhost",
      ca: options.ca ?? material.cert,
      checkServerIdentity: pinnedIdentityCheck(options.pins),
    });
    socket.once("secureConnect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error) => resolve(error.message));
  });
}

describe("TLS pinning", () => {
  it("spkiPinOfPem agrees with the pin CLS prints, and differs between keys", () => {
    expect(spkiPinOfPem(material.cert)).toBe(spkiPin(material.cert));
    expect(spkiPinOfPem(Buffer.from(material.cert))).toBe(spkiPin(material.cert));
    expect(spkiPinOfPem(other.cert)).not.toBe(spkiPinOfPem(material.cert));
  });

  it("connects when the certificate's key is pinned", async () => {
    expect(await connect({ pins: [spkiPinOfPem(material.cert)] })).toBe("connected");
    expect(await connect({ pins: [spkiPinOfPem(other.cert), spkiPinOfPem(material.cert)] })).toBe("connected");
  });

  it("refuses a trusted certificate whose key is not pinned (a man in the middle)", async () => {
    const message = await connect({ pins: [spkiPinOfPem(other.cert)] });
    expect(message).toBe(`certificate public key ${spkiPinOfPem(material.cert)} is not pinned`);
    expect(await connect({ pins: [] })).toContain("is not pinned");
  });

  it("still checks the host name before the pin", async () => {
    const message = await connect({ pins: [spkiPinOfPem(material.cert)], servername: "cls.example.com" });
    expect(message).not.toBe("connected");
    expect(message).toMatch(/Hostname\/IP does not match|cls\.example\.com/);
  });

  it("does not let a pin stand in for an untrusted certificate", async () => {
    expect(await connect({ pins: [spkiPinOfPem(material.cert)], ca: other.cert })).not.toBe("connected");
  });
});

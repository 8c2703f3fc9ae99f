import { create, ScalarType, toBinary, toJsonString, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";

/** A small deterministic PRNG (mulberry32), so a failing run can be repeated from its seed. */
export class Random {
  #state: number;
  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.int(0, 255);
    return out;
  }
  /** Printable ASCII without spaces. */
  text(length: number): string {
    let out = "";
    for (let i = 0; i < length; i++) out += String.fromCharCode(this.int(0x21, 0x7e));
    return out;
  }
  /** Random "JSON-ish" garbage: braces, quotes, colons, numbers and words. */
  jsonish(length: number): string {
    const parts = ["{", "}", "[", "]", '"', ":", ",", "null", "true", "-1", "1e999", "\\u0000", "NaN", "\"a\"", " ", "\n", "\\"];
    let out = "";
    while (out.length < length) out += this.next() < 0.7 ? this.pick(parts) : this.text(this.int(1, 4));
    return out.slice(0, length);
  }
}

/** A public RPC with what a fuzzer needs to address it. */
export interface Rpc {
  service: DescService;
  method: DescMethod;
  /** `pkg.Service/Method` */
  name: string;
  path: string;
}

export function rpcsOf(services: readonly DescService[]): Rpc[] {
  return services.flatMap((service) =>
    service.methods.map((method) => ({ service, method, name: `${service.typeName}/${method.name}`, path: `/${service.typeName}/${method.name}` })),
  );
}

/** A plausible random value for each field of a message (what a well-formed request looks like). */
export function sampleMessage(random: Random, schema: DescMessage, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of schema.fields) {
    const value = sampleField(random, field, depth);
    if (value !== undefined) out[field.localName] = value;
  }
  return out;
}

function sampleScalar(random: Random, scalar: ScalarType): unknown {
  switch (scalar) {
    case ScalarType.STRING:
      return random.text(random.int(1, 24));
    case ScalarType.BYTES:
      return random.bytes(random.int(1, 64));
    case ScalarType.BOOL:
      return random.next() < 0.5;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return BigInt(random.int(0, 1_000_000));
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return random.next() * 1000;
    default:
      return random.int(0, 1_000);
  }
}

function sampleField(random: Random, field: DescField, depth: number): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return sampleScalar(random, field.scalar);
    case "enum":
      return random.pick(field.enum.values).number;
    case "message":
      if (field.message.typeName === "google.protobuf.Timestamp") return { seconds: BigInt(random.int(0, 2_000_000_000)), nanos: 0 };
      return depth > 2 ? undefined : sampleMessage(random, field.message, depth + 1);
    case "list": {
      const length = random.int(1, 3);
      if (field.listKind === "scalar") return Array.from({ length }, () => sampleScalar(random, field.scalar));
      if (field.listKind === "enum") return Array.from({ length }, () => random.pick(field.enum.values).number);
      return depth > 2 ? [] : Array.from({ length }, () => sampleMessage(random, field.message, depth + 1));
    }
    case "map":
      return { [random.text(5)]: field.mapKind === "scalar" ? sampleScalar(random, field.scalar) : undefined };
  }
}

/** A request message in both Connect unary encodings. */
export function encode(schema: DescMessage, init: Record<string, unknown>): { proto: Uint8Array; json: string } {
  const message = create(schema, init as never);
  return { proto: toBinary(schema, message), json: toJsonString(schema, message) };
}

/** JSON values of the wrong type for a field, as a fuzzer would send them. */
export function wrongTypedValues(field: DescField): unknown[] {
  switch (field.fieldKind) {
    case "scalar":
      if (field.scalar === ScalarType.STRING) return [12345, true, { nested: "object" }, ["a", "list"]];
      if (field.scalar === ScalarType.BYTES) return ["%%% not base64 %%%", 42, { b: 1 }];
      if (field.scalar === ScalarType.BOOL) return ["yes", 2, { b: true }];
      return ["not a number", 1.5, 1e30, { n: 1 }, [1]];
    case "enum":
      return ["NOT_A_VALUE", 1.5, { e: 1 }];
    case "message":
      return [42, "a string", [1, 2, 3], true];
    case "list":
      return ["not-a-list", { a: 1 }, 7, field.listKind === "message" ? [1, "x", true] : [{ wrong: "element" }]];
    case "map":
      return [["not", "a", "map"], "string", 3];
  }
}

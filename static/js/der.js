// A small DER (ASN.1) reader and writer, with PEM and base64 helpers.
//
// Only what certificates and private keys need: definite lengths, low tag numbers, lengths up
// to 4 bytes. Every read is bounded by its parent's end, so a hostile file can make it fail but
// never read past the buffer or loop.

export class DerError extends Error {}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
};

// Context-specific constructed tags: [0], [1], [3].
export const context = (number) => 0xa0 | number;

export class Node {
  constructor(bytes, tag, start, contentStart, end) {
    this.bytes = bytes;
    this.tag = tag;
    this.start = start;
    this.contentStart = contentStart;
    this.end = end;
  }

  get content() {
    return this.bytes.subarray(this.contentStart, this.end);
  }

  // The whole element, header included (what a hash or an import needs).
  get der() {
    return this.bytes.subarray(this.start, this.end);
  }

  get constructed() {
    return (this.tag & 0x20) !== 0;
  }

  children() {
    if (!this.constructed) throw new DerError("a primitive element has no children");
    const out = [];
    let position = this.contentStart;
    while (position < this.end) {
      const child = readElement(this.bytes, position, this.end);
      out.push(child);
      position = child.end;
    }
    return out;
  }

  expect(tag, what) {
    if (this.tag !== tag) throw new DerError(`${what} is malformed`);
    return this;
  }
}

export function readElement(bytes, offset, end) {
  if (offset + 2 > end) throw new DerError("the data ends too early");
  const tag = bytes[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerError("unsupported high tag number");
  let position = offset + 1;
  let length = bytes[position++];
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0) throw new DerError("indefinite lengths are not DER");
    if (count > 4) throw new DerError("an element is too long");
    if (position + count > end) throw new DerError("the data ends too early");
    if (bytes[position] === 0) throw new DerError("a length is not minimally encoded");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[position++];
    if (length < 0x80) throw new DerError("a length is not minimally encoded");
  }
  if (length > end - position) throw new DerError("the data ends too early");
  return new Node(bytes, tag, offset, position, position + length);
}

// One element that fills `bytes` exactly.
export function parseDer(bytes) {
  const node = readElement(bytes, 0, bytes.length);
  if (node.end !== bytes.length) throw new DerError("trailing data after the element");
  return node;
}

export function readOid(node) {
  node.expect(TAG.OID, "an object identifier");
  const content = node.content;
  if (content.length === 0 || content.length > 64) throw new DerError("an OID is malformed");
  const arcs = [];
  let value = 0;
  for (let i = 0; i < content.length; i++) {
    if (value === 0 && content[i] === 0x80) throw new DerError("an OID is not minimal");
    value = value * 128 + (content[i] & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new DerError("an OID arc is too large");
    if (!(content[i] & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  if (content[content.length - 1] & 0x80) throw new DerError("an OID is truncated");
  const first = arcs[0] < 80 ? Math.floor(arcs[0] / 40) : 2;
  return [first, arcs[0] - first * 40, ...arcs.slice(1)].join(".");
}

// An INTEGER's magnitude, without the sign byte DER adds to positive numbers.
export function readUnsigned(node) {
  node.expect(TAG.INTEGER, "an integer");
  let content = node.content;
  if (content.length === 0) throw new DerError("an integer is empty");
  if (content[0] & 0x80) throw new DerError("a negative integer where a positive one belongs");
  while (content.length > 1 && content[0] === 0) content = content.subarray(1);
  return content;
}

export function readSmallInteger(node) {
  const magnitude = readUnsigned(node);
  if (magnitude.length > 4) throw new DerError("an integer is too large");
  return magnitude.reduce((value, byte) => value * 256 + byte, 0);
}

export function readBitString(node) {
  node.expect(TAG.BIT_STRING, "a bit string");
  const content = node.content;
  if (content.length === 0 || content[0] !== 0) throw new DerError("a bit string is malformed");
  return content.subarray(1);
}

export function bitLength(magnitude) {
  if (magnitude.length === 0 || (magnitude.length === 1 && magnitude[0] === 0)) return 0;
  return (magnitude.length - 1) * 8 + (32 - Math.clz32(magnitude[0]));
}

const decoders = {
  [TAG.UTF8_STRING]: (bytes) => new TextDecoder("utf-8", { fatal: true }).decode(bytes),
  [TAG.BMP_STRING]: (bytes) => new TextDecoder("utf-16be", { fatal: true }).decode(bytes),
  [TAG.TELETEX_STRING]: latin1,
  [TAG.UNIVERSAL_STRING]: (bytes) => {
    if (bytes.length % 4) throw new DerError("a UniversalString is malformed");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let text = "";
    for (let i = 0; i < bytes.length; i += 4) text += String.fromCodePoint(view.getUint32(i));
    return text;
  },
};
for (const tag of [
  TAG.PRINTABLE_STRING,
  TAG.IA5_STRING,
  TAG.NUMERIC_STRING,
  TAG.VISIBLE_STRING,
]) {
  decoders[tag] = latin1;
}

export function readString(node) {
  const decode = decoders[node.tag];
  if (!decode) throw new DerError("a name holds a value that is not a string");
  try {
    return decode(node.content);
  } catch (error) {
    if (error instanceof DerError) throw error;
    throw new DerError("a name holds a string that does not decode");
  }
}

function latin1(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

export function readTime(node) {
  const text = latin1(node.content);
  let match;
  let year;
  if (node.tag === TAG.UTC_TIME && (match = UTC_TIME.exec(text))) {
    year = Number(match[1]);
    year += year < 50 ? 2000 : 1900; // RFC 5280 section 4.1.2.5.1
  } else if (node.tag === TAG.GENERALIZED_TIME && (match = GENERALIZED_TIME.exec(text))) {
    year = Number(match[1]);
  } else {
    throw new DerError("a time is malformed");
  }
  const [month, day, hour, minute, second] = match.slice(2).map(Number);
  const time = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (time.getUTCMonth() !== month - 1 || time.getUTCDate() !== day || hour > 23 || minute > 59) {
    throw new DerError("a time is not a real date");
  }
  if (year < 100) time.setUTCFullYear(year); // Date.UTC maps 0..99 to 1900..1999
  return time;
}

// -- writing ----------------------------------------------------------------------------------

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let position = 0;
  for (const part of parts) {
    out.set(part, position);
    position += part.length;
  }
  return out;
}

export function encode(tag, ...contents) {
  const content = concat(...contents);
  const length = content.length;
  let header;
  if (length < 0x80) {
    header = [tag, length];
  } else {
    const lengthBytes = [];
    for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) lengthBytes.unshift(rest & 0xff);
    header = [tag, 0x80 | lengthBytes.length, ...lengthBytes];
  }
  return concat(Uint8Array.from(header), content);
}

export function encodeOid(dotted) {
  const arcs = dotted.split(".").map(Number);
  const values = [arcs[0] * 40 + arcs[1], ...arcs.slice(2)];
  const bytes = [];
  for (const value of values) {
    const groups = [value & 0x7f];
    for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) {
      groups.unshift(0x80 | (rest & 0x7f));
    }
    bytes.push(...groups);
  }
  return encode(TAG.OID, Uint8Array.from(bytes));
}

export const encodeSmallInteger = (value) => encode(TAG.INTEGER, Uint8Array.of(value));
export const NULL = Uint8Array.of(TAG.NULL, 0);

// -- base64 and PEM ----------------------------------------------------------------------------

export function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text) {
  const compact = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4) {
    throw new DerError("the base64 text is malformed");
  }
  const binary = atob(compact);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function toHex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// The armour is matched loosely (any label), as openssl and Go's pem package do; the label is
// checked by the caller.
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
const PEM_HEADER = /^[A-Za-z-]+:.*$/gm;

// Every PEM block in `text`: {label, der, encrypted}; a block whose body does not decode
// throws. `encrypted` marks the traditional "Proc-Type: 4,ENCRYPTED" form.
export function pemBlocks(text) {
  const blocks = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const [, label, body] = match;
    const headers = body.match(PEM_HEADER) || [];
    const encrypted = headers.some((line) => /^Proc-Type:.*ENCRYPTED/i.test(line));
    const data = body.replace(PEM_HEADER, "");
    let der = null;
    if (!encrypted) der = fromBase64(data);
    blocks.push({ label, der, encrypted });
  }
  return blocks;
}

export function toPem(label, der) {
  const lines = toBase64(der).match(/.{1,64}/g) || [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

// Text for finding PEM armour in a file of any content (non-ASCII bytes only need to not match).
export function bytesToText(bytes) {
  return new TextDecoder("windows-1252").decode(bytes);
}

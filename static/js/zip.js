// Reading a zip archive in the browser: the end-of-central-directory record, the central
// directory, and stored or deflated entries (deflate through DecompressionStream).
//
// A client bundle is a dozen small files, so everything unusual is refused rather than
// supported: zip64, split archives, encryption, other compression methods, and sizes far beyond
// what a bundle holds. Sizes are checked before anything is inflated, and inflating stops as soon
// as an entry grows past the size it declared.

export class ZipError extends Error {}

export const LIMITS = {
  entries: 256,
  entryBytes: 1024 * 1024,
  totalBytes: 4 * 1024 * 1024,
};

const SIGNATURE = {
  LOCAL: 0x04034b50,
  CENTRAL: 0x02014b50,
  END: 0x06054b50,
  ZIP64_LOCATOR: 0x07064b50,
};
const FLAG_ENCRYPTED = 0x0001;
const FLAG_STRONG_ENCRYPTION = 0x0040;
const FLAG_UTF8 = 0x0800;
const STORED = 0;
const DEFLATED = 8;
const END_SIZE = 22;
const MAX_COMMENT = 0xffff;

export function isZip(bytes) {
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) return false;
  return [
    [3, 4],
    [5, 6],
    [7, 8],
  ].some(([a, b]) => bytes[2] === a && bytes[3] === b);
}

function findEnd(view) {
  const last = view.byteLength - END_SIZE;
  for (let offset = last; offset >= 0 && offset >= last - MAX_COMMENT; offset--) {
    if (view.getUint32(offset, true) !== SIGNATURE.END) continue;
    if (offset + END_SIZE + view.getUint16(offset + 20, true) <= view.byteLength) return offset;
  }
  throw new ZipError("The zip file is damaged: its table of contents is missing.");
}

// The archive's file entries (directories left out), read from the central directory.
export function listEntries(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = findEnd(view);
  const disk = view.getUint16(end + 4, true);
  const directoryDisk = view.getUint16(end + 6, true);
  const onThisDisk = view.getUint16(end + 8, true);
  const count = view.getUint16(end + 10, true);
  const size = view.getUint32(end + 12, true);
  const start = view.getUint32(end + 16, true);
  const zip64 =
    (end >= 20 && view.getUint32(end - 20, true) === SIGNATURE.ZIP64_LOCATOR) ||
    count === 0xffff ||
    size === 0xffffffff ||
    start === 0xffffffff;
  if (zip64) throw new ZipError("This is a zip64 archive; a client bundle is a plain zip.");
  if (disk !== 0 || directoryDisk !== 0 || onThisDisk !== count) {
    throw new ZipError("This zip is split over several files; drop the whole bundle zip.");
  }
  if (count > LIMITS.entries) {
    throw new ZipError(
      `This zip holds ${count} files; a client bundle holds about ten. Drop the bundle UCP gave you.`,
    );
  }
  if (start + size > end) throw new ZipError("The zip file is damaged: its contents overlap.");
  const decoderUtf8 = new TextDecoder("utf-8");
  const decoderLegacy = new TextDecoder("windows-1252");
  const entries = [];
  let position = start;
  for (let i = 0; i < count; i++) {
    if (position + 46 > start + size || view.getUint32(position, true) !== SIGNATURE.CENTRAL) {
      throw new ZipError("The zip file is damaged: its table of contents does not parse.");
    }
    const flags = view.getUint16(position + 8, true);
    const nameLength = view.getUint16(position + 28, true);
    const extraLength = view.getUint16(position + 30, true);
    const commentLength = view.getUint16(position + 32, true);
    const next = position + 46 + nameLength + extraLength + commentLength;
    if (next > start + size) throw new ZipError("The zip file is damaged: a name runs over.");
    const nameBytes = bytes.subarray(position + 46, position + 46 + nameLength);
    const name = (flags & FLAG_UTF8 ? decoderUtf8 : decoderLegacy).decode(nameBytes);
    const entry = {
      name: name.replaceAll("\\", "/"),
      flags,
      method: view.getUint16(position + 10, true),
      crc32: view.getUint32(position + 16, true),
      compressedSize: view.getUint32(position + 20, true),
      size: view.getUint32(position + 24, true),
      localOffset: view.getUint32(position + 42, true),
    };
    if (entry.compressedSize === 0xffffffff || entry.size === 0xffffffff) {
      throw new ZipError("This is a zip64 archive; a client bundle is a plain zip.");
    }
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) {
      throw new ZipError(
        "This zip is encrypted. Drop the bundle as UCP gave it to you, or just its cert.pem.",
      );
    }
    if (!entry.name.endsWith("/")) entries.push(entry);
    position = next;
  }
  return entries;
}

export function basename(path) {
  return path.slice(path.lastIndexOf("/") + 1);
}

// Reads entries one at a time, within LIMITS.totalBytes for the whole archive.
export class ZipReader {
  constructor(bytes) {
    this.bytes = bytes;
    this.entries = listEntries(bytes);
    this.budget = LIMITS.totalBytes;
  }

  async read(entry) {
    const label = basename(entry.name) || entry.name;
    if (entry.size > LIMITS.entryBytes || entry.compressedSize > LIMITS.entryBytes) {
      throw new ZipError(`${label} in this zip is far too large for a client bundle file.`);
    }
    if (entry.size > this.budget) {
      throw new ZipError("This zip unpacks to far more than a client bundle holds.");
    }
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    const local = entry.localOffset;
    if (local + 30 > this.bytes.length || view.getUint32(local, true) !== SIGNATURE.LOCAL) {
      throw new ZipError(`The zip file is damaged: ${label} cannot be found in it.`);
    }
    const dataStart = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const dataEnd = dataStart + entry.compressedSize;
    if (dataEnd > this.bytes.length) throw new ZipError(`The zip file is damaged: ${label} is cut off.`);
    const data = this.bytes.subarray(dataStart, dataEnd);
    let content;
    if (entry.method === STORED) {
      if (entry.compressedSize !== entry.size) {
        throw new ZipError(`The zip file is damaged: ${label} has two sizes.`);
      }
      content = data.slice();
    } else if (entry.method === DEFLATED) {
      content = await inflate(data, entry.size, label);
    } else {
      throw new ZipError(
        `${label} in this zip is compressed with a method browsers cannot read (${entry.method}).`,
      );
    }
    if (content.length !== entry.size || crc32(content) !== entry.crc32) {
      content.fill(0);
      throw new ZipError(`The zip file is damaged: ${label} does not unpack to what it should.`);
    }
    this.budget -= content.length;
    return content;
  }
}

async function inflate(data, size, label) {
  const damaged = new ZipError(`The zip file is damaged: ${label} does not unpack.`);
  const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  const reader = stream.getReader();
  const out = new Uint8Array(size);
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (length + value.length > size) {
        value.fill(0);
        out.fill(0);
        await reader.cancel().catch(() => {});
        throw damaged;
      }
      out.set(value, length);
      length += value.length;
      value.fill(0);
    }
  } catch (error) {
    out.fill(0);
    if (error === damaged) throw error;
    throw damaged;
  }
  return out.subarray(0, length);
}

let crcTable = null;

export function crc32(bytes) {
  if (crcTable === null) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of bytes) crc = crcTable[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// From what the member dropped or picked (a bundle zip, cert.pem with key.pem, or cert.pem alone)
// to the certificate to upload and, when there is one, the private key PEM block to sign with.
//
// Nothing here touches the page. Every failure is an IntakeError whose message is for the
// member; it never quotes file contents.

import { DerError, bytesToText, pemBlocks, toPem } from "./der.js";
import { parseCertificate } from "./x509.js";
import { ZipError, ZipReader, basename, isZip } from "./zip.js";

export class IntakeError extends Error {}

export const MAX_FILES = 8;
export const MAX_FILE_BYTES = 1024 * 1024;
export const MAX_ZIP_BYTES = 8 * 1024 * 1024;

const isPrivateKeyLabel = (label) => label.endsWith("PRIVATE KEY");

// -> {certificate, pem, key: {label, der, encrypted} | null, keyProblem, fromZip}
export async function readDropped(fileList) {
  const files = Array.from(fileList);
  if (files.length === 0) throw new IntakeError("No file arrived; drop the file again.");
  if (files.length > MAX_FILES) {
    throw new IntakeError("That is too many files. Drop the bundle zip, or cert.pem and key.pem.");
  }
  for (const file of files) {
    if (file.size > MAX_ZIP_BYTES) {
      throw new IntakeError(
        `${file.name} is ${megabytes(file.size)}; a client bundle is a few kilobytes. ` +
          "Drop the bundle zip or its cert.pem.",
      );
    }
  }
  const contents = await Promise.all(
    files.map(async (file) => ({ name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) })),
  );
  try {
    const zips = contents.filter((file) => isZip(file.bytes));
    if (zips.length > 0) {
      if (contents.length > 1) {
        throw new IntakeError("Drop the bundle zip on its own, without other files.");
      }
      return await fromZip(zips[0]);
    }
    return fromFiles(contents);
  } finally {
    // The key's bytes live on only in what was returned, for as long as the caller keeps it.
    for (const file of contents) file.bytes.fill(0);
  }
}

async function fromZip(archive) {
  let certBytes = null;
  let keyBytes = null;
  try {
    const reader = new ZipReader(archive.bytes);
    const named = (wanted) => reader.entries.filter((entry) => basename(entry.name) === wanted);
    const certEntry = shallowest(named("cert.pem"));
    if (!certEntry) {
      throw new IntakeError(
        `${archive.name} holds no cert.pem, so it is not a UCP client bundle. Drop the ` +
          "ucp-bundle-<user>.zip that UCP gave you, or its cert.pem.",
      );
    }
    // The key beside the certificate; a key from elsewhere in the zip is only a fallback.
    const folder = certEntry.name.slice(0, certEntry.name.length - "cert.pem".length);
    const keys = named("key.pem");
    const keyEntry = keys.find((entry) => entry.name === `${folder}key.pem`) || shallowest(keys);

    certBytes = await reader.read(certEntry);
    const found = classify([{ name: "cert.pem", bytes: certBytes }]);
    if (!found.certificate) throw new IntakeError(`cert.pem in ${archive.name} holds no certificate.`);
    found.key?.der?.fill(0); // only the bundle's own key.pem signs
    found.key = null;
    found.keyProblem = null;
    found.fromZip = true;
    if (keyEntry) {
      // A damaged key.pem makes the whole zip suspect: it fails here and nothing is uploaded.
      keyBytes = await reader.read(keyEntry);
      found.key = classify([{ name: "key.pem", bytes: keyBytes }]).key;
      if (!found.key) found.keyProblem = "key.pem in this bundle holds no private key.";
    }
    return found;
  } catch (error) {
    if (error instanceof IntakeError) throw error;
    if (error instanceof ZipError) throw new IntakeError(error.message);
    throw new IntakeError(`${archive.name} could not be read as a zip file.`);
  } finally {
    certBytes?.fill(0);
    keyBytes?.fill(0);
  }
}

function fromFiles(contents) {
  for (const file of contents) {
    if (file.bytes.length > MAX_FILE_BYTES) {
      throw new IntakeError(`${file.name} is ${megabytes(file.bytes.length)}; cert.pem is a few kilobytes.`);
    }
  }
  const found = { ...classify(contents), fromZip: false, keyProblem: null };
  if (!found.certificate) {
    if (found.key) {
      throw new IntakeError(
        "That is a private key (key.pem), which is never uploaded. Drop cert.pem with it, or " +
          "the whole bundle zip.",
      );
    }
    throw new IntakeError(
      "No certificate was found in what you dropped. Drop the UCP client bundle zip, or its cert.pem.",
    );
  }
  return found;
}

// Finds the certificate (the first one in cert.pem, or in the only file holding one) and the
// first private key among `files`.
function classify(files) {
  const withCertificate = [];
  let key = null;
  for (const file of files) {
    const text = bytesToText(file.bytes);
    if (text.includes("-----BEGIN ")) {
      let blocks;
      try {
        blocks = pemBlocks(text);
      } catch {
        throw new IntakeError(`${file.name} is damaged: its PEM text does not decode.`);
      }
      if (blocks.length === 0) throw new IntakeError(`${file.name} is damaged: a PEM block is cut off.`);
      key = key || blocks.find((block) => isPrivateKeyLabel(block.label)) || null;
      const first = blocks.find((block) => block.label === "CERTIFICATE");
      if (first) withCertificate.push({ name: file.name, der: first.der });
      for (const block of blocks) {
        if (block !== key && block.der && isPrivateKeyLabel(block.label)) block.der.fill(0);
      }
    } else if (file.bytes[0] === 0x30) {
      // DER: a certificate, or something else (a DER key) that is not used.
      try {
        parseCertificate(file.bytes);
        withCertificate.push({ name: file.name, der: file.bytes.slice() });
      } catch {
        // not a certificate
      }
    }
  }
  if (withCertificate.length === 0) return { certificate: null, key };
  const chosen =
    withCertificate.find((file) => basename(file.name) === "cert.pem") ||
    (withCertificate.length === 1 ? withCertificate[0] : null);
  if (!chosen) {
    throw new IntakeError(
      "Several of these files hold certificates. Drop cert.pem (and key.pem) from your bundle.",
    );
  }
  let certificate;
  try {
    certificate = parseCertificate(chosen.der);
  } catch (error) {
    if (!(error instanceof DerError)) throw error;
    throw new IntakeError(
      `${chosen.name} does not parse as a certificate (${error.message}). Download a new client ` +
        "bundle from UCP.",
    );
  }
  return { certificate, pem: toPem("CERTIFICATE", chosen.der), key };
}

function shallowest(entries) {
  const depth = (entry) => entry.name.split("/").length;
  return entries.slice().sort((a, b) => depth(a) - depth(b))[0] || null;
}

function megabytes(size) {
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

// WebCrypto: the key IDs Notary and Docker show for a certificate, and the proof of possession
// (the challenge signed with key.pem, checked against the certificate before it is offered).

import { toBase64, toHex } from "./der.js";
import { KeyProblem, privateKeyFromBlock } from "./x509.js";

const subtle = globalThis.crypto?.subtle;

// WebCrypto only exists on https pages (and on localhost).
export const available = Boolean(subtle);

export class NotThisKey extends Error {}

function importParameters(key) {
  if (key.kind === "ec") return { name: "ECDSA", namedCurve: key.curve };
  return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
}

function signParameters(key) {
  if (key.kind === "ec") return { name: "ECDSA", hash: "SHA-256" };
  return { name: "RSASSA-PKCS1-v1_5" };
}

async function sha256Hex(bytes) {
  return toHex(new Uint8Array(await subtle.digest("SHA-256", bytes)));
}

// The certificate's SubjectPublicKeyInfo as Go and cryptography re-encode it (uncompressed EC
// point, NULL RSA parameters), which is what the key ID hashes.
async function normalisedSpki(certificate) {
  try {
    const key = await subtle.importKey(
      "spki",
      certificate.spki,
      importParameters(certificate.publicKey),
      true,
      ["verify"],
    );
    return new Uint8Array(await subtle.exportKey("spki", key));
  } catch {
    return certificate.spki;
  }
}

// {canonical, short, fingerprint}; canonical is `notary delegation list`'s key ID, short is
// `docker trust inspect`'s, fingerprint is `openssl x509 -fingerprint -sha256`'s.
export async function keyIds(certificate) {
  const fingerprintHex = await sha256Hex(certificate.der);
  const fingerprint = fingerprintHex.toUpperCase().match(/../g).join(":");
  const { kind } = certificate.publicKey;
  if (!kind) return { canonical: null, short: null, fingerprint, sha256: fingerprintHex };
  const spki = await normalisedSpki(certificate);
  const keytype = kind === "ec" ? "ecdsa" : "rsa";
  const json = `{"keytype":"${keytype}","keyval":{"private":null,"public":"${toBase64(spki)}"}}`;
  const canonical = await sha256Hex(new TextEncoder().encode(json));
  return { canonical, short: canonical.slice(0, 12), fingerprint, sha256: fingerprintHex };
}

// Sign `challenge` with the private key PEM block and check the signature against the
// certificate. Returns the signature in base64; throws KeyProblem (the key cannot be used) or
// NotThisKey (the key is not the certificate's). The block's bytes are wiped either way.
export async function proveWith(block, certificate, challenge) {
  let privateKey;
  let key;
  try {
    const certificateKey = certificate.publicKey;
    if (!certificateKey.kind) {
      throw new KeyProblem(`The certificate's key (${certificateKey.label}) cannot sign here.`);
    }
    key = privateKeyFromBlock(block, certificateKey);
    if (key.kind !== certificateKey.kind || key.curve !== certificateKey.curve) throw new NotThisKey();
    try {
      // Not extractable: once imported, the key cannot be read back out of this object.
      privateKey = await subtle.importKey("pkcs8", key.pkcs8, importParameters(key), false, ["sign"]);
    } catch {
      throw new KeyProblem("key.pem does not parse as a private key.");
    }
  } finally {
    key?.pkcs8.fill(0);
    block.der?.fill(0);
  }
  const data = new TextEncoder().encode(challenge);
  const signature = new Uint8Array(await subtle.sign(signParameters(key), privateKey, data));
  privateKey = null;
  const publicKey = await subtle.importKey(
    "spki",
    certificate.spki,
    importParameters(certificate.publicKey),
    false,
    ["verify"],
  );
  if (!(await subtle.verify(signParameters(key), publicKey, signature, data))) throw new NotThisKey();
  return toBase64(signature);
}

// Certificates and private keys as the intake needs them: a certificate's names, validity and
// public key; a private key from its PEM block, re-wrapped as PKCS#8 for WebCrypto's importKey.

import {
  DerError,
  NULL,
  TAG,
  bitLength,
  context,
  encode,
  encodeOid,
  encodeSmallInteger,
  parseDer,
  readBitString,
  readElement,
  readOid,
  readSmallInteger,
  readString,
  readTime,
  readUnsigned,
  toHex,
} from "./der.js";

export const OID = {
  EC_PUBLIC_KEY: "1.2.840.10045.2.1",
  RSA_ENCRYPTION: "1.2.840.113549.1.1.1",
  P256: "1.2.840.10045.3.1.7",
  P384: "1.3.132.0.34",
};

const CURVES = { [OID.P256]: "P-256", [OID.P384]: "P-384" };
const CURVE_OIDS = { "P-256": OID.P256, "P-384": OID.P384 };
const OTHER_KEYS = {
  "1.3.132.0.35": "ECDSA P-521",
  "1.3.101.112": "Ed25519",
  "1.3.101.113": "Ed448",
  "1.2.840.10040.4.1": "DSA",
};
// Signature algorithms Notary refuses in a certificate.
const WEAK_SIGNATURES = {
  "1.2.840.113549.1.1.4": "MD5",
  "1.2.840.113549.1.1.5": "SHA1",
  "1.2.840.10045.4.1": "SHA1",
  "1.2.840.10040.4.3": "SHA1",
};

// The short names cryptography's rfc4514_string() uses, so the browser shows a subject exactly
// as the server's pages do; other attributes appear as dotted OIDs there too.
const SHORT_NAMES = {
  "2.5.4.3": "CN",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.6": "C",
  "2.5.4.9": "STREET",
  "0.9.2342.19200300.100.1.25": "DC",
  "0.9.2342.19200300.100.1.1": "UID",
};
// What a configured subject attribute may be called, beyond the short names above.
const ATTRIBUTE_ALIASES = {
  EMAILADDRESS: "1.2.840.113549.1.9.1",
  E: "1.2.840.113549.1.9.1",
  SERIALNUMBER: "2.5.4.5",
};

export class KeyProblem extends Error {}

function children(node, what, minimum, maximum = minimum) {
  const list = node.expect(TAG.SEQUENCE, what).children();
  if (list.length < minimum || list.length > maximum) throw new DerError(`${what} is malformed`);
  return list;
}

// -- names ------------------------------------------------------------------------------------

function readName(node) {
  return node
    .expect(TAG.SEQUENCE, "a name")
    .children()
    .map((rdn) =>
      rdn
        .expect(TAG.SET, "a name")
        .children()
        .map((attribute) => {
          const [type, value] = children(attribute, "a name attribute", 2);
          let text;
          try {
            text = readString(value);
          } catch {
            text = `#${toHex(value.der)}`; // RFC 4514's form for a value that is not a string
          }
          return { oid: readOid(type), value: text };
        }),
    );
}

function escapeValue(value) {
  if (!value) return "";
  let escaped = value.replace(/[\\"+,;<>]/g, (c) => `\\${c}`).replaceAll("\0", "\\00");
  if (escaped[0] === "#" || escaped[0] === " ") escaped = `\\${escaped}`;
  if (escaped.endsWith(" ")) escaped = `${escaped.slice(0, -1)}\\ `;
  return escaped;
}

export function rfc4514(name) {
  return name
    .slice()
    .reverse()
    .map((rdn) =>
      rdn.map(({ oid, value }) => `${SHORT_NAMES[oid] || oid}=${escapeValue(value)}`).join("+"),
    )
    .join(",");
}

// The values of one attribute ("CN", "UID", "emailAddress" or a dotted OID) in a name.
export function attributeValues(name, attribute) {
  const wanted = attribute.toUpperCase();
  const oid =
    ATTRIBUTE_ALIASES[wanted] ||
    Object.keys(SHORT_NAMES).find((key) => SHORT_NAMES[key] === wanted) ||
    (/^\d+(\.\d+)+$/.test(attribute) ? attribute : null);
  if (!oid) return null;
  return name.flat().filter((entry) => entry.oid === oid).map((entry) => entry.value);
}

// -- certificates -----------------------------------------------------------------------------

function readPublicKey(spki) {
  const [algorithm, bits] = children(spki, "the public key", 2);
  const [oidNode, parameters] = children(algorithm, "the key algorithm", 1, 2);
  const oid = readOid(oidNode);
  const keyBits = readBitString(bits);
  if (oid === OID.EC_PUBLIC_KEY) {
    const curveOid = parameters && parameters.tag === TAG.OID ? readOid(parameters) : null;
    const curve = CURVES[curveOid];
    if (!curve) return { kind: null, label: OTHER_KEYS[curveOid] || "ECDSA on an unknown curve" };
    return { kind: "ec", curve, label: `ECDSA ${curve}` };
  }
  if (oid === OID.RSA_ENCRYPTION) {
    const key = parseDer(keyBits);
    const [modulus] = children(key, "the RSA key", 2);
    const size = bitLength(readUnsigned(modulus));
    return { kind: "rsa", bits: size, label: `RSA ${size}` };
  }
  return { kind: null, label: OTHER_KEYS[oid] || `an unknown key type (${oid})` };
}

// Parse a DER certificate; throws DerError when it is not one.
export function parseCertificate(der) {
  const [tbs, signatureAlgorithm, signature] = children(parseDer(der), "the certificate", 3);
  readBitString(signature);
  const fields = tbs.expect(TAG.SEQUENCE, "the certificate").children();
  let index = fields[0] && fields[0].tag === context(0) ? 1 : 0;
  if (fields.length < index + 6) throw new DerError("the certificate is malformed");
  fields[index++].expect(TAG.INTEGER, "the serial number");
  index++; // the signature algorithm again, inside the signed part
  const issuer = readName(fields[index++]);
  const [notBefore, notAfter] = children(fields[index++], "the validity", 2);
  const subject = readName(fields[index++]);
  const spki = fields[index++];
  const [signatureOid] = children(signatureAlgorithm, "the signature algorithm", 1, 2);
  return {
    der,
    subject,
    issuer,
    subjectText: rfc4514(subject),
    issuerText: rfc4514(issuer),
    notBefore: readTime(notBefore),
    notAfter: readTime(notAfter),
    spki: spki.der,
    publicKey: readPublicKey(spki),
    weakSignature: WEAK_SIGNATURES[readOid(signatureOid)] || null,
  };
}

// -- private keys -----------------------------------------------------------------------------

function pkcs8(algorithmOid, parameters, privateKey) {
  return encode(
    TAG.SEQUENCE,
    encodeSmallInteger(0),
    encode(TAG.SEQUENCE, encodeOid(algorithmOid), parameters),
    encode(TAG.OCTET_STRING, privateKey),
  );
}

function readEcParameters(ecPrivateKey) {
  const fields = children(ecPrivateKey, "the EC key", 2, 4);
  if (readSmallInteger(fields[0]) !== 1) throw new DerError("the EC key has an unknown version");
  fields[1].expect(TAG.OCTET_STRING, "the EC key");
  const parameters = fields.find((field) => field.tag === context(0));
  if (!parameters) return null;
  return readOid(readElement(parameters.bytes, parameters.contentStart, parameters.end));
}

function ecKey(curveOid, certificateKey) {
  if (curveOid === null && certificateKey.kind === "ec") return certificateKey.curve;
  const curve = CURVES[curveOid];
  if (!curve) throw new KeyProblem("key.pem uses a curve WebCrypto cannot sign with here.");
  return curve;
}

// A private key PEM block ({label, der, encrypted}) as {kind, curve?, pkcs8}. The caller wipes
// `pkcs8` and the block's `der` once the key is imported.
export function privateKeyFromBlock(block, certificateKey) {
  if (block.encrypted || block.label.startsWith("ENCRYPTED")) {
    throw new KeyProblem(
      "key.pem is protected with a passphrase, so the browser cannot sign with it. " +
        "Use the openssl command below (it asks for the passphrase).",
    );
  }
  try {
    const root = parseDer(block.der);
    if (block.label === "EC PRIVATE KEY") {
      const curve = ecKey(readEcParameters(root), certificateKey);
      return {
        kind: "ec",
        curve,
        pkcs8: pkcs8(OID.EC_PUBLIC_KEY, encodeOid(CURVE_OIDS[curve]), block.der),
      };
    }
    if (block.label === "RSA PRIVATE KEY") {
      const [version] = children(root, "the RSA key", 9, 10);
      if (readSmallInteger(version) !== 0) throw new KeyProblem("key.pem is a multi-prime RSA key.");
      return { kind: "rsa", pkcs8: pkcs8(OID.RSA_ENCRYPTION, NULL, block.der) };
    }
    if (block.label === "PRIVATE KEY") {
      const [, algorithm] = children(root, "the key", 3, 5);
      const [oidNode, parameters] = children(algorithm, "the key algorithm", 1, 2);
      const oid = readOid(oidNode);
      if (oid === OID.RSA_ENCRYPTION) return { kind: "rsa", pkcs8: block.der.slice() };
      if (oid === OID.EC_PUBLIC_KEY) {
        const curveOid = parameters && parameters.tag === TAG.OID ? readOid(parameters) : null;
        if (curveOid === null) throw new KeyProblem("key.pem does not name its curve.");
        return { kind: "ec", curve: ecKey(curveOid, certificateKey), pkcs8: block.der.slice() };
      }
      throw new KeyProblem("key.pem is neither an ECDSA nor an RSA key.");
    }
  } catch (error) {
    if (error instanceof DerError) throw new KeyProblem("key.pem does not parse as a private key.");
    throw error;
  }
  throw new KeyProblem(`key.pem holds a ${block.label.toLowerCase()}, which the browser cannot use.`);
}

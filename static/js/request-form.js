// The request form's certificate intake ("bundle drop"), on top of a form that works without it.
//
// The Certificate field becomes a drop zone (the file picker stays). Whatever arrives (the UCP
// bundle zip, cert.pem with key.pem, or cert.pem alone) is read here: the certificate's details
// and key IDs are shown before anything is sent, key.pem signs the server's challenge, and the
// file input ends up holding cert.pem only, so the ordinary form submit never carries the key.

import { IntakeError, readDropped } from "./intake.js";
import { NotThisKey, available, keyIds, proveWith } from "./proof.js";
import { KeyProblem, attributeValues } from "./x509.js";

const DAY_MS = 24 * 60 * 60 * 1000;
// Six months unless the form says otherwise (data-expiry-warning-days, the server's figure).
const WARN_BEFORE_EXPIRY_DAYS = 183;
const NOT_BEFORE_SKEW_MS = DAY_MS; // notary's clock skew margin
const MINIMUM_RSA_BITS = 2048;

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function timeElement(date) {
  const iso = date.toISOString().replace(".000Z", "Z");
  return element("time", { datetime: iso }, `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`);
}

class CertificateIntake {
  constructor(form) {
    this.form = form;
    this.input = form.querySelector('input[type="file"][name="certificate"]');
    this.signature = form.querySelector('[name="possession_signature"]');
    this.challenge = form.querySelector('[name="challenge"]');
    this.proof = form.querySelector("#proof");
    this.zone = this.input.closest(".field");
    this.username = form.dataset.username || "";
    // What the subject attribute must equal (the username, or the email for emailAddress).
    this.expectedSubject = form.dataset.subjectExpected || "";
    this.warnBeforeExpiryDays = Number(form.dataset.expiryWarningDays) || WARN_BEFORE_EXPIRY_DAYS;
    this.subjectAttribute = form.dataset.subjectAttribute || "CN";
    this.generation = 0;
    this.reading = null;
    this.build();
    this.listen();
    // A module script runs once the page is parsed: a file chosen before that is read now.
    if (this.input.files.length > 0) this.take(this.input.files);
  }

  build() {
    const accepted = this.input.accept ? this.input.accept.split(",") : [];
    if (!accepted.includes(".zip")) this.input.accept = [...accepted, ".zip"].join(",");
    this.zone.classList.add("dropzone");
    const hint = element(
      "p",
      { class: "drop-hint", id: "certificate-drop-hint" },
      "Drop your UCP client bundle here (ucp-bundle-<user>.zip), or cert.pem with key.pem, or " +
        "choose a file. Only cert.pem is uploaded: your browser signs with key.pem and never " +
        "sends it.",
    );
    this.zone.querySelector("label").after(hint);
    const described = this.input.getAttribute("aria-describedby");
    this.input.setAttribute(
      "aria-describedby",
      described ? `${described} ${hint.id}` : hint.id,
    );
    this.alert = element("div", { class: "intake-messages", role: "alert" });
    this.status = element("div", { class: "intake-messages", role: "status" });
    this.zone.append(this.alert, this.status);
    // Not a labelled region: the page's tests and people find the file input by "Certificate".
    this.preview = element("div", { class: "cert-preview" });
    this.preview.hidden = true;
    this.zone.after(this.preview);
    const command = this.proof?.querySelector("pre");
    if (command && navigator.clipboard) {
      const copy = element("button", { type: "button", class: "link copy" }, "Copy command");
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(command.textContent.trim());
          copy.textContent = "Copied";
        } catch {
          copy.textContent = "Select the command and copy it";
        }
      });
      command.after(copy);
    }
  }

  listen() {
    const inZone = (event) => this.zone.contains(event.target);
    for (const type of ["dragenter", "dragover"]) {
      this.zone.addEventListener(type, (event) => {
        event.preventDefault();
        if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
        this.zone.classList.add("dragging");
      });
    }
    this.zone.addEventListener("dragleave", (event) => {
      if (!this.zone.contains(event.relatedTarget)) this.zone.classList.remove("dragging");
    });
    this.zone.addEventListener("drop", (event) => {
      event.preventDefault();
      this.zone.classList.remove("dragging");
      if (event.dataTransfer) this.take(event.dataTransfer.files);
    });
    // A file dropped beside the zone must not make the browser open (or download) it.
    for (const type of ["dragover", "drop"]) {
      window.addEventListener(type, (event) => {
        if (!inZone(event)) event.preventDefault();
      });
    }
    this.input.addEventListener("change", () => {
      if (this.input.files.length > 0) this.take(this.input.files);
      else this.reset();
    });
    this.form.addEventListener("submit", (event) => {
      if (this.reading) {
        event.preventDefault();
        this.say("info", "Still reading your files; submit again in a moment.");
      }
    });
  }

  // -- one intake ---------------------------------------------------------------------------

  async take(fileList) {
    const files = Array.from(fileList); // a drop's FileList is only readable during the event
    const generation = ++this.generation;
    this.forgetKept();
    this.reset();
    this.form.dataset.intake = "reading";
    const stale = () => generation !== this.generation;
    const work = this.process(files, stale);
    this.reading = work;
    try {
      await work;
    } catch {
      // Nothing the member could act on, and no detail that might hold file contents.
      if (!stale()) {
        this.clearInput();
        this.fail("These files could not be read. Drop the bundle zip, or cert.pem.");
        this.finish("failed");
      }
    } finally {
      if (!stale()) this.reading = null;
    }
  }

  async process(files, stale) {
    let found;
    try {
      found = await readDropped(files);
    } catch (error) {
      if (stale()) return;
      this.clearInput();
      this.fail(
        error instanceof IntakeError
          ? error.message
          : "These files could not be read. Drop the bundle zip, or cert.pem.",
      );
      this.finish("failed");
      return;
    }
    const key = found.key;
    found.key = null;
    try {
      if (stale()) return;
      const ids = available ? await keyIds(found.certificate) : null;
      if (stale()) return;
      this.upload(found.pem);
      this.describe(found.certificate, ids);
      if (found.keyProblem) this.fail(found.keyProblem);
      if (!key) {
        this.offerOpenssl(
          found.fromZip
            ? "This bundle has no usable key.pem, so your browser cannot sign for you."
            : "Without key.pem your browser cannot sign for you.",
        );
        this.finish("done");
        return;
      }
      await this.sign(key, found, stale);
    } finally {
      key?.der?.fill(0);
    }
  }

  async sign(key, found, stale) {
    const challenge = this.challenge?.value || "";
    if (!available || !challenge || !this.signature) {
      this.offerOpenssl(
        available
          ? "Your browser cannot sign on this page."
          : "Your browser cannot sign on this page (it needs HTTPS).",
      );
      this.finish("done");
      return;
    }
    let signature;
    try {
      signature = await proveWith(key, found.certificate, challenge);
    } catch (error) {
      if (stale()) return;
      if (error instanceof NotThisKey) {
        this.fail(
          found.fromZip
            ? "key.pem in this bundle does not belong to its cert.pem. Download the bundle " +
                "again from UCP, or sign with the key that belongs to the certificate."
            : "This key.pem does not belong to this cert.pem. Drop the pair from the same bundle.",
        );
      } else if (error instanceof KeyProblem) {
        this.fail(error.message);
      } else {
        this.fail("Your browser could not sign with key.pem.");
      }
      this.offerOpenssl("");
      this.finish("done");
      return;
    }
    if (stale()) return;
    this.signature.value = signature;
    this.signature.readOnly = true;
    this.signature.dataset.filledBy = "browser";
    this.say(
      "success",
      found.fromZip
        ? "Signed in your browser with key.pem from the bundle; the key is not sent."
        : "Signed in your browser with key.pem; the key is not sent.",
    );
    if (this.proof) {
      this.proof.open = false;
      this.proof.classList.remove("prominent");
    }
    this.finish("signed");
  }

  // -- the page -----------------------------------------------------------------------------

  upload(pem) {
    const files = new DataTransfer();
    files.items.add(new File([pem], "cert.pem", { type: "application/x-pem-file" }));
    this.input.files = files.files; // no change event: this does not start another intake
  }

  clearInput() {
    this.input.value = "";
    this.input.files = new DataTransfer().files;
  }

  // The certificate the page kept from an earlier try gives way to the new file, and so does
  // the signature that was made for it.
  forgetKept() {
    const kept = this.form.querySelector('[name="kept_certificate"]');
    if (!kept?.value) return;
    kept.value = "";
    this.form.querySelector(".kept-certificate")?.remove();
    if (this.signature && !this.signature.dataset.filledBy) this.signature.value = "";
  }

  reset() {
    this.alert.replaceChildren();
    this.status.replaceChildren();
    this.preview.replaceChildren();
    this.preview.hidden = true;
    if (this.signature?.dataset.filledBy === "browser") {
      this.signature.value = "";
      this.signature.readOnly = false;
      delete this.signature.dataset.filledBy;
    }
    this.proof?.classList.remove("prominent");
    delete this.form.dataset.intake;
  }

  finish(state) {
    this.form.dataset.intake = state;
  }

  fail(message) {
    this.alert.append(element("p", { class: "note error" }, message));
  }

  say(kind, message) {
    this.status.append(element("p", { class: `note ${kind}` }, message));
  }

  offerOpenssl(reason) {
    if (!this.proof) return;
    this.proof.open = true;
    this.proof.classList.add("prominent");
    const how =
      "Run the openssl command under “Prove that you hold the key” in the folder of your " +
      "client bundle and paste its output into Signature.";
    this.say("info", reason ? `${reason} ${how}` : how);
  }

  describe(certificate, ids) {
    const rows = [
      ["Subject", "subject", certificate.subjectText],
      ["Issuer", "issuer", certificate.issuerText],
      ["Valid from", "not-before", timeElement(certificate.notBefore)],
      ["Valid until", "not-after", timeElement(certificate.notAfter)],
      ["Key", "key", certificate.publicKey.label],
    ];
    if (ids?.canonical) {
      rows.push(
        ["Key ID (notary delegation list)", "key-id", element("code", {}, ids.canonical)],
        ["Short key ID (docker trust inspect)", "short-key-id", element("code", {}, ids.short)],
      );
    }
    if (ids) rows.push(["Certificate SHA-256", "fingerprint", element("code", {}, ids.fingerprint)]);
    const list = element("dl");
    for (const [term, name, value] of rows) {
      list.append(element("dt", {}, term), element("dd", { "data-cert": name }, value));
    }
    this.preview.append(
      element("h2", {}, "Certificate to upload"),
      list,
      element("p", { class: "hint" }, "Only this certificate (cert.pem) is sent with the form."),
    );
    this.preview.hidden = false;
    this.check(certificate);
  }

  // The server decides; these are the same checks, shown before anything is sent.
  check(certificate) {
    const now = Date.now();
    const until = certificate.notAfter.toISOString().slice(0, 10);
    const { publicKey } = certificate;
    if (certificate.notAfter.getTime() <= now) {
      this.fail(
        `This certificate expired on ${until}. Download a new client bundle from UCP and ` +
          "use its cert.pem.",
      );
    } else {
      const days = Math.floor((certificate.notAfter.getTime() - now) / DAY_MS);
      if (days < this.warnBeforeExpiryDays) {
        this.say(
          "warning",
          `This certificate expires on ${until}, in ${days} days; the delegation ends with it. ` +
            "A new client bundle from UCP would last longer.",
        );
      }
    }
    if (certificate.notBefore.getTime() > now + NOT_BEFORE_SKEW_MS) {
      this.fail("This certificate is not valid yet; check the clock of the machine that issued it.");
    }
    if (certificate.weakSignature) {
      this.fail(`This certificate is signed with ${certificate.weakSignature}, which Notary refuses.`);
    }
    if (!publicKey.kind) {
      this.fail(`This certificate's key is ${publicKey.label}; Notary needs ECDSA P-256, P-384 or RSA.`);
    } else if (publicKey.kind === "rsa" && publicKey.bits < MINIMUM_RSA_BITS) {
      this.fail(`This certificate's RSA key has ${publicKey.bits} bits; Notary needs at least 2048.`);
    }
    const names = attributeValues(certificate.subject, this.subjectAttribute);
    if (names && this.expectedSubject && !names.some((name) => sameName(name, this.expectedSubject))) {
      const shown = names.length ? `“${names[0]}”` : "missing";
      this.say(
        "warning",
        `The certificate's ${this.subjectAttribute} is ${shown}, but yours is ` +
          `“${this.expectedSubject}”. The portal only accepts a certificate issued to you.`,
      );
    }
  }
}

// The server's rule: ASCII names match whatever their case, others only exactly.
function sameName(a, b) {
  const ascii = /^[\x00-\x7f]*$/;
  return ascii.test(a) && ascii.test(b) ? a.toLowerCase() === b.toLowerCase() : a === b;
}

const form = document.querySelector("form.request-form");
if (form?.querySelector('input[type="file"][name="certificate"]') && window.DataTransfer) {
  new CertificateIntake(form);
}

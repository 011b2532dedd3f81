// The request form's Until field follows the repository chosen: it offers that repository's
// default date and stops at the latest it allows (the options carry both, from the server).
// A date the member typed themselves is left alone.

const form = document.querySelector("form.request-form");
const repository = form?.querySelector('select[name="repository"]');
const until = form?.querySelector('input[name="until"]');

function follow() {
  const option = repository.selectedOptions[0];
  until.max = option?.dataset.latestUntil || "";
  if (!until.value || until.dataset.filledBy === "repository") {
    until.value = option?.dataset.defaultUntil || "";
    until.dataset.filledBy = "repository";
  }
}

if (repository && until && !repository.disabled && !until.disabled) {
  repository.addEventListener("change", follow);
  until.addEventListener("input", () => delete until.dataset.filledBy);
}

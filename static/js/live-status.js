// While the worker is busy with a request, its page keeps its status part current: every few
// seconds the page is fetched again and only #request-live is swapped in, so what the reader is
// doing elsewhere on the page (a comment being typed, the scroll position) stays. It stops as
// soon as the fetched part no longer asks to be refreshed. Without scripts, <noscript>'s meta
// refresh reloads the whole page instead.

const LIVE = "request-live";

async function refreshed(url) {
  const response = await fetch(url, { headers: { Accept: "text/html" }, cache: "no-store" });
  if (!response.ok) return null;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  return page.getElementById(LIVE);
}

function watch(live) {
  const seconds = Number(live.dataset.refreshSeconds);
  if (!seconds) return;
  setTimeout(async () => {
    let next = null;
    try {
      next = await refreshed(window.location.href);
    } catch {
      // A network hiccup: try again on the next tick with what the page shows.
    }
    if (next) {
      live.replaceWith(next);
      watch(next);
    } else {
      watch(live);
    }
  }, seconds * 1000);
}

const live = document.getElementById(LIVE);
if (live) watch(live);

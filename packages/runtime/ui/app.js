// The UI's shell: hash routing (#/overview, #/state/example/person/seth, …) to one page at a
// time, the token dialog the API asks for on a 401, and a line for messages. A page is a module
// with `mount(root, params, signal)`; leaving it aborts `signal`, which stops its polling and
// cancels its requests, so only the page in view (and the stats sampler) talks to Eddy.

import { onTokenNeeded, storedToken, storeToken } from "./api.js";
import { startSampling } from "./stats.js";

/** @typedef {(root: HTMLElement, params: string[], signal: AbortSignal) => void} Mount */

/** @type {Record<string, () => Promise<{ mount: Mount }>>} */
const PAGES = {
  overview: () => import("./pages/overview.js"),
  functions: () => import("./pages/functions.js"),
  state: () => import("./pages/state.js"),
  "dead-letters": () => import("./pages/dead-letters.js"),
  checkpoints: () => import("./pages/checkpoints.js"),
};

const root = /** @type {HTMLElement} */ (document.getElementById("page"));
/** @type {AbortController | undefined} */
let current;

async function route() {
  const [name = "overview", ...params] = location.hash
    .replace(/^#\/?/, "")
    .split("/")
    .map((segment) => decodeURIComponent(segment));
  const load = PAGES[name];
  if (load === undefined) {
    location.replace("#/overview");
    return;
  }
  current?.abort();
  const controller = new AbortController();
  current = controller;
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link instanceof HTMLElement && link.dataset.page === name);
  }
  const page = await load();
  if (controller.signal.aborted) return;
  root.replaceChildren();
  page.mount(
    root,
    params.filter((param) => param !== ""),
    controller.signal,
  );
}

const dialog = /** @type {HTMLDialogElement} */ (document.getElementById("token-dialog"));
const input = /** @type {HTMLInputElement} */ (document.getElementById("token-input"));

/** @param {string} reason */
function askForToken(reason) {
  /** @type {HTMLElement} */ (document.getElementById("token-reason")).textContent = reason;
  input.value = storedToken();
  if (!dialog.open) dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        storeToken(input.value.trim());
        resolve(undefined);
      },
      { once: true },
    );
  });
}

// Escape would close the dialog without a token, and the refused requests would ask again at once.
dialog.addEventListener("cancel", (event) => event.preventDefault());
document.getElementById("token-button")?.addEventListener("click", () => void askForToken("Change the admin token."));

onTokenNeeded(askForToken);
startSampling();
window.addEventListener("hashchange", () => void route());
void route();

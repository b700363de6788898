// Checkpoints: the ones in blob storage (newest first), take one now, or a named savepoint that
// retention never deletes. Without --checkpoints the page says how to turn them on.

import { ApiError, api, describeError } from "../api.js";
import { formatBytes, formatTime, h, replace, sleep, toast } from "../dom.js";

const REFRESH_MS = 5000;

/** @param {HTMLElement} root @param {string[]} _params @param {AbortSignal} signal */
export function mount(root, _params, signal) {
  const body = h("tbody");
  const status = h("p", { class: "hint" });
  const take = /** @type {HTMLButtonElement} */ (
    h("button", { type: "button", class: "primary" }, "Take a checkpoint now")
  );
  const name = /** @type {HTMLInputElement} */ (
    h("input", { placeholder: "savepoint name", required: true, spellcheck: false })
  );
  const savepoint = h(
    "form",
    {
      class: "inline",
      onsubmit: (/** @type {Event} */ event) => {
        event.preventDefault();
        void takeSavepoint();
      },
    },
    name,
    h("button", { type: "submit" }, "Take a savepoint"),
  );
  replace(
    root,
    h("h1", {}, "Checkpoints"),
    h("div", { class: "toolbar" }, take, savepoint),
    status,
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "grid checkpoints" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Id", "Kind", "Name", "Sequence", "Created", "Size"].map((title) => h("th", {}, title)),
          ),
        ),
        body,
      ),
    ),
  );

  const load = async () => {
    try {
      const list = await api("GET", "v1/checkpoints", { signal });
      status.textContent = list.enabled
        ? `${list.checkpoints.length} in storage, newest first.`
        : "Checkpoints are off: start Eddy with --checkpoints URL (file:///dir, s3://bucket/prefix, gs://bucket/prefix).";
      take.disabled = !list.enabled;
      replace(
        body,
        list.checkpoints.length === 0 ? h("tr", {}, h("td", { colspan: 6, class: "empty" }, "None yet.")) : null,
        list.checkpoints.map((/** @type {any} */ checkpoint) =>
          h(
            "tr",
            { dataset: { checkpoint: checkpoint.id } },
            h("td", {}, checkpoint.id),
            h("td", {}, h("span", { class: `badge ${checkpoint.kind}` }, checkpoint.kind)),
            h("td", {}, checkpoint.name ?? ""),
            // A cluster's savepoint has no one commit sequence: its generation instead.
            h(
              "td",
              { class: "num" },
              checkpoint.seq === undefined ? `generation ${checkpoint.generation}` : String(checkpoint.seq),
            ),
            h("td", {}, formatTime(checkpoint.createdAt)),
            h("td", { class: "num" }, formatBytes(checkpoint.bytes)),
          ),
        ),
      );
    } catch (error) {
      if (!signal.aborted) status.textContent = describeError(error);
    }
  };

  /**
   * Takes a checkpoint or savepoint; resolves whether it was taken.
   * @param {string} what
   * @param {() => Promise<any>} call
   */
  const run = async (what, call) => {
    take.disabled = true;
    try {
      const result = await call();
      toast(
        result.unchanged ? `Nothing changed since ${result.id}: no new ${what} needed` : `Took ${what} ${result.id}`,
      );
      return true;
    } catch (error) {
      if (!signal.aborted) {
        const off = error instanceof ApiError && error.code === "checkpoints-disabled";
        toast(off ? "Checkpoints are off (--checkpoints)" : describeError(error), "error");
      }
      return false;
    } finally {
      // The list says whether checkpoints are on, and so whether the button may be used.
      await load();
    }
  };

  const takeSavepoint = async () => {
    if (await run("savepoint", () => api("POST", "v1/savepoints", { body: { name: name.value.trim() }, signal }))) {
      name.value = "";
    }
  };
  take.addEventListener("click", () => void run("checkpoint", () => api("POST", "v1/checkpoints", { signal })));

  const poll = async () => {
    while (!signal.aborted) {
      await load();
      await sleep(REFRESH_MS, signal);
    }
  };
  void poll();
}

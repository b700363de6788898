// Dead letters: what the failure policy set aside. A page of 50 at a time, oldest first (there
// may be millions after an outage); inspect one, replay it once its function is healed, or
// discard it. Discarding asks twice: a discarded letter's messages are gone for good.

import { api, describeError, queryString } from "../api.js";
import { formatNumber, formatTime, h, replace, sleep, toast } from "../dom.js";
import { readableArgument } from "../values.js";

const PAGE_SIZE = 50;
const REFRESH_MS = 3000;

/**
 * @typedef {{ id: string, partition: number, atMs: number, target: { typename: string, id: string },
 *   reason: string, messages: unknown, egress?: unknown, ingress?: unknown, replayable: boolean }} DeadLetter
 */

/** @param {HTMLElement} root @param {string[]} _params @param {AbortSignal} signal */
export function mount(root, _params, signal) {
  const body = h("tbody");
  const problem = h("p", { class: "problem", hidden: true });
  const detail = h("div", { class: "detail" });
  const pager = h("div", { class: "pager" });
  const selectAll = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", title: "select this page" }));
  const bulk = h("div", { class: "toolbar" });
  replace(
    root,
    h("h1", {}, "Dead letters"),
    bulk,
    problem,
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "grid dead-letters" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", {}, selectAll),
            ["Id", "At", "Target", "Reason", "Messages", ""].map((title) => h("th", {}, title)),
          ),
        ),
        body,
      ),
    ),
    pager,
    detail,
  );

  /** Cursors of the pages before this one (`after` values), to go back. */
  /** @type {(string | undefined)[]} */
  const previous = [];
  /** @type {string | undefined} */
  let after;
  /** @type {DeadLetter[]} */
  let letters = [];
  /** @type {string | null} */
  let next = null;
  /** @type {Set<string>} */
  const selected = new Set();
  /** What the table shows, to leave it alone (and a button about to be clicked) when nothing changed. */
  let rendered = "";

  const load = async () => {
    try {
      const page = await api("GET", `v1/dead-letters${queryString({ limit: PAGE_SIZE, after })}`, { signal });
      letters = page.deadLetters;
      next = page.next;
      problem.hidden = true;
      render();
    } catch (error) {
      if (signal.aborted) return;
      problem.hidden = false;
      problem.textContent = describeError(error);
    }
  };

  const goBack = () => {
    after = previous.pop();
    void load();
  };
  const goOn = () => {
    previous.push(after);
    after = next ?? undefined;
    void load();
  };

  const render = () => {
    for (const id of selected) if (!letters.some((letter) => letter.id === id)) selected.delete(id);
    const signature = JSON.stringify([letters, next, previous.length, [...selected]]);
    if (signature === rendered) return;
    rendered = signature;
    replace(
      body,
      letters.length === 0 ? h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No dead letters.")) : null,
      letters.map((letter) => letterRow(letter)),
    );
    selectAll.checked = letters.length > 0 && selected.size === letters.length;
    replace(
      pager,
      h("button", { type: "button", disabled: previous.length === 0, onclick: goBack }, "← Previous"),
      h("span", {}, `page ${previous.length + 1}`),
      h(
        "button",
        {
          type: "button",
          disabled: next === null,
          onclick: goOn,
        },
        "Next →",
      ),
    );
    renderBulk();
  };

  const renderBulk = () => {
    const ids = [...selected];
    replace(
      bulk,
      h(
        "button",
        { type: "button", disabled: ids.length === 0, onclick: () => void act("replay", { ids }) },
        `Replay selected (${ids.length})`,
      ),
      confirmButton(`Discard selected (${ids.length})`, ids.length === 0, () => act("discard", { ids })),
      h("span", { class: "spacer" }),
      h(
        "button",
        { type: "button", disabled: letters.length === 0, onclick: () => void act("replay", { all: true }) },
        "Replay all",
      ),
      confirmButton("Discard all", letters.length === 0, () => act("discard", { all: true })),
    );
  };

  /** @param {DeadLetter} letter */
  const letterRow = (letter) => {
    const box = /** @type {HTMLInputElement} */ (
      h("input", { type: "checkbox", checked: selected.has(letter.id), title: "select" })
    );
    box.addEventListener("change", () => {
      if (box.checked) selected.add(letter.id);
      else selected.delete(letter.id);
      render();
    });
    const count = Array.isArray(letter.messages) ? letter.messages.length : Number(letter.messages);
    const source =
      letter.ingress !== undefined ? " (from an ingress)" : letter.egress !== undefined ? " (to an egress)" : "";
    return h(
      "tr",
      { dataset: { letter: letter.id } },
      h("td", {}, box),
      h("td", {}, h("button", { type: "button", class: "link", onclick: () => void inspect(letter.id) }, letter.id)),
      h("td", {}, formatTime(letter.atMs)),
      h("td", {}, `${letter.target.typename}/${letter.target.id}${source}`),
      h("td", { class: "reason", title: letter.reason }, letter.reason),
      h("td", { class: "num" }, formatNumber(count)),
      h(
        "td",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            class: "primary",
            disabled: !letter.replayable,
            title: letter.replayable
              ? "deliver its messages again"
              : "a record an ingress could not route cannot be replayed",
            onclick: () => void act("replay", { id: letter.id }),
          },
          "Replay",
        ),
        confirmButton("Discard", false, () => act("discard", { id: letter.id })),
      ),
    );
  };

  /**
   * @param {"replay" | "discard"} action
   * @param {{ id?: string, ids?: string[], all?: boolean }} which
   */
  const act = async (action, which) => {
    try {
      const result =
        which.id !== undefined
          ? await api(
              action === "replay" ? "POST" : "DELETE",
              `v1/dead-letters/${encodeURIComponent(which.id)}${action === "replay" ? "/replay" : ""}`,
              { signal },
            )
          : await api("POST", `v1/dead-letters/${action}`, {
              body: which.all ? { all: true } : { ids: which.ids },
              signal,
            });
      const done = /** @type {string[]} */ (action === "replay" ? result.replayed : result.discarded) ?? [];
      toast(
        action === "replay"
          ? `Replayed ${done.length} dead letter${done.length === 1 ? "" : "s"}: ${done.join(", ")}`
          : `Discarded ${done.length} dead letter${done.length === 1 ? "" : "s"}`,
      );
      selected.clear();
      if (done.includes(detail.dataset.letter ?? "")) replace(detail);
      await load();
    } catch (error) {
      if (!signal.aborted) toast(describeError(error), "error");
    }
  };

  /** @param {string} id */
  const inspect = async (id) => {
    try {
      const letter = await api("GET", `v1/dead-letters/${encodeURIComponent(id)}`, { signal });
      detail.dataset.letter = id;
      replace(
        detail,
        h(
          "section",
          { class: "card" },
          h("h2", {}, `Dead letter ${id}`),
          h("p", { class: "reason-full" }, letter.reason),
          // The whole letter names its messages `invocations`, as `eddy dead-letters list --json` does.
          (Array.isArray(letter.invocations)
            ? letter.invocations
            : Array.isArray(letter.messages)
              ? letter.messages
              : []
          ).map(messageView),
          h("details", {}, h("summary", {}, "As JSON"), h("pre", { class: "value" }, JSON.stringify(letter, null, 2))),
        ),
      );
    } catch (error) {
      if (!signal.aborted) toast(describeError(error), "error");
    }
  };

  selectAll.addEventListener("change", () => {
    for (const letter of letters) {
      if (selectAll.checked) selected.add(letter.id);
      else selected.delete(letter.id);
    }
    render();
  });

  const poll = async () => {
    while (!signal.aborted) {
      await load();
      await sleep(REFRESH_MS, signal);
    }
  };
  void poll();
}

/**
 * A button that acts on the second click within three seconds.
 * @param {string} label
 * @param {boolean} disabled
 * @param {() => Promise<void>} action
 */
function confirmButton(label, disabled, action) {
  const button = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "danger", disabled }, label));
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  button.addEventListener("click", () => {
    if (button.dataset.armed === "yes") {
      clearTimeout(timer);
      void action();
      return;
    }
    button.dataset.armed = "yes";
    button.textContent = "Really discard?";
    timer = setTimeout(() => {
      button.dataset.armed = "";
      button.textContent = label;
    }, 3000);
  });
  return button;
}

/**
 * One message of a letter: who sent it, its type, and its argument as people read it.
 * @param {any} message
 */
function messageView(message) {
  const argument = message?.argument;
  const typename = typeof argument?.typename === "string" ? argument.typename : "";
  const readable = typeof argument?.value === "string" ? readableArgument(typename, argument.value) : undefined;
  const caller = message?.caller;
  return h(
    "div",
    { class: "message" },
    h(
      "div",
      { class: "sub" },
      typename,
      readable?.as === "base64" ? " (bytes, as base64)" : "",
      caller?.typename ? ` from ${caller.typename}/${caller.id}` : "",
    ),
    h("pre", { class: "value" }, readable?.text ?? JSON.stringify(message, null, 2)),
  );
}

// The state browser: find an address, see its state, backlog, work in flight and delayed
// messages, and edit a state. It never lists a whole type: ids come a page (50) at a time,
// sorted, narrowed by the prefix typed so far, so a type with a million instances answers as
// fast as one with ten. The address shown is in the URL (#/state/ns/type/id) to be shared.

import { addressPath, api, describeError, queryString } from "../api.js";
import { formatNumber, formatTime, h, replace, sleep, toast } from "../dom.js";

const PAGE_SIZE = 50;
const SEARCH_DELAY_MS = 150;
const REFRESH_MS = 2000;

/**
 * @typedef {{ typename: string, value: unknown, encoding: "json" | "base64", writtenAtMs: number | null }} StateEntry
 * @typedef {{ address: { namespace: string, type: string, id: string }, partition: number,
 *   state: Record<string, StateEntry>, backlog: number,
 *   inFlight: { messages: number, failedAttempts: number } | null, delayedMessages: unknown }} AddressState
 */

/** @param {HTMLElement} root @param {string[]} params @param {AbortSignal} signal */
export function mount(root, params, signal) {
  const [namespace, type, ...rest] = params;
  const typeInput = /** @type {HTMLInputElement} */ (
    h("input", {
      id: "state-type",
      list: "state-types",
      placeholder: "namespace/type",
      autocomplete: "off",
      spellcheck: false,
    })
  );
  const typeList = h("datalist", { id: "state-types" });
  const idInput = /** @type {HTMLInputElement} */ (
    h("input", {
      id: "state-id",
      type: "search",
      placeholder: "id, or the start of one",
      autocomplete: "off",
      spellcheck: false,
    })
  );
  const ids = h("ul", { class: "ids" });
  const more = h("button", { type: "button", class: "quiet", hidden: true }, "More");
  const detail = h("div", { class: "detail" });
  const form = h(
    "form",
    {
      class: "finder",
      onsubmit: (/** @type {Event} */ event) => {
        event.preventDefault();
        void open(idInput.value);
      },
    },
    h("label", {}, "Function type", typeInput),
    h("label", {}, "Id", idInput),
    h("button", { type: "submit", class: "primary" }, "Open"),
    typeList,
  );
  replace(
    root,
    h("h1", {}, "State"),
    form,
    h("div", { class: "split" }, h("aside", { class: "card" }, h("h2", {}, "Ids with state"), ids, more), detail),
  );

  if (namespace !== undefined && type !== undefined) typeInput.value = `${namespace}/${type}`;
  void api("GET", "v1/function-types", { signal })
    .then((/** @type {{ functionTypes: { typename: string }[] }} */ body) => {
      replace(
        typeList,
        body.functionTypes.map(({ typename }) => h("option", { value: typename })),
      );
      if (typeInput.value === "" && body.functionTypes[0] !== undefined) {
        typeInput.value = body.functionTypes[0].typename;
        void search(true);
      }
    })
    .catch(() => undefined);

  /** The search being shown: a later one (a key typed since) replaces it. */
  let searchGeneration = 0;
  /** @type {string | null} */
  let next = null;

  /** @param {boolean} fresh a new prefix (true) or the next page of the same one */
  const search = async (fresh) => {
    const typename = typeInput.value.trim();
    if (!typename.includes("/")) {
      replace(ids, h("li", { class: "empty" }, "Choose a function type."));
      more.hidden = true;
      return;
    }
    const generation = ++searchGeneration;
    try {
      const page = await api(
        "GET",
        `v1/state/${addressPath(typename)}${queryString({ limit: PAGE_SIZE, prefix: idInput.value, after: fresh ? undefined : (next ?? undefined) })}`,
        { signal },
      );
      if (generation !== searchGeneration) return;
      if (fresh) ids.replaceChildren();
      for (const id of /** @type {string[]} */ (page.ids)) {
        ids.append(
          h(
            "li",
            {},
            h("button", { type: "button", class: "link", dataset: { id }, onclick: () => void open(id) }, id),
          ),
        );
      }
      if (ids.childElementCount === 0) ids.append(h("li", { class: "empty" }, "No id with state starts with that."));
      next = page.next;
      more.hidden = next === null;
    } catch (error) {
      if (signal.aborted || generation !== searchGeneration) return;
      replace(ids, h("li", { class: "problem" }, describeError(error)));
      more.hidden = true;
    }
  };

  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let searchTimer;
  const searchSoon = () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => void search(true), SEARCH_DELAY_MS);
  };
  idInput.addEventListener("input", searchSoon);
  typeInput.addEventListener("change", () => void search(true));
  more.addEventListener("click", () => void search(false));

  /** The address open now, and whether its view may be refreshed (not while an edit is open). */
  /** @type {{ typename: string, id: string } | undefined} */
  let shown;
  let editing = false;

  /** @param {string} id */
  const open = async (id) => {
    const typename = typeInput.value.trim();
    if (!typename.includes("/")) {
      toast("Choose a function type first (namespace/type).", "error");
      return;
    }
    shown = { typename, id };
    editing = false;
    idInput.value = id;
    history.replaceState(null, "", `#/state/${addressPath(typename, id)}`);
    await load();
  };

  const load = async () => {
    if (shown === undefined) return;
    const { typename, id } = shown;
    try {
      /** @type {AddressState} */
      const state = await api("GET", `v1/state/${addressPath(typename, id)}`, { signal });
      if (shown?.typename !== typename || shown.id !== id || editing) return;
      renderAddress(detail, typename, id, state, {
        onEdit: (value) => (editing = value),
        onChanged: () => void load(),
        signal,
      });
    } catch (error) {
      if (!signal.aborted) replace(detail, h("p", { class: "problem" }, describeError(error)));
    }
  };

  // What a function does to the address shows up without a click (visits counting up under load).
  const refresh = async () => {
    while (!signal.aborted) {
      await sleep(REFRESH_MS, signal);
      if (!editing && !signal.aborted) await load();
    }
  };

  signal.addEventListener("abort", () => clearTimeout(searchTimer));
  if (rest.length > 0) void open(rest.join("/"));
  else if (typeInput.value !== "") void search(true);
  void refresh();
}

/**
 * @param {HTMLElement} detail
 * @param {string} typename
 * @param {string} id
 * @param {AddressState} state
 * @param {{ onEdit: (editing: boolean) => void, onChanged: () => void, signal: AbortSignal }} hooks
 */
function renderAddress(detail, typename, id, state, hooks) {
  const names = Object.keys(state.state).sort();
  const delayed = state.delayedMessages;
  const delayedCount = Array.isArray(delayed) ? delayed.length : Number(delayed ?? 0);
  replace(
    detail,
    h(
      "section",
      { class: "card address", dataset: { address: `${typename}/${id}` } },
      h("h2", {}, `${typename}/`, h("span", { class: "id" }, id)),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Partition"),
        h("dd", {}, String(state.partition)),
        h("dt", {}, "Backlog"),
        h("dd", { dataset: { fact: "backlog" } }, formatNumber(state.backlog)),
        h("dt", {}, "In flight"),
        h(
          "dd",
          { dataset: { fact: "in-flight" } },
          state.inFlight === null
            ? "nothing"
            : `${formatNumber(state.inFlight.messages)} messages, ${formatNumber(state.inFlight.failedAttempts)} failed attempts`,
        ),
        h("dt", {}, "Delayed messages"),
        h("dd", { dataset: { fact: "delayed" } }, formatNumber(delayedCount)),
      ),
      Array.isArray(delayed) && delayed.length > 0
        ? h("pre", { class: "value" }, JSON.stringify(delayed, null, 2))
        : null,
      h(
        "table",
        { class: "grid state" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["State", "Type", "Value", "Written", ""].map((title) => h("th", {}, title)),
          ),
        ),
        h(
          "tbody",
          {},
          names.length === 0
            ? h("tr", {}, h("td", { colspan: 5, class: "empty" }, "This address holds no state."))
            : null,
          names.map((name) => stateRow(typename, id, name, /** @type {StateEntry} */ (state.state[name]), hooks)),
        ),
      ),
      newStateForm(typename, id, hooks),
    ),
  );
}

/** @param {StateEntry} entry */
function shownValue(entry) {
  return entry.encoding === "json" ? JSON.stringify(entry.value, null, 2) : String(entry.value);
}

/**
 * Writes a state and says how it went; resolves true when it was written.
 * @param {string} typename
 * @param {string} id
 * @param {string} name
 * @param {string} text what the person typed: JSON, or base64 when `encoding` says so
 * @param {"json" | "base64"} encoding
 * @param {string | undefined} stateTypename
 * @param {AbortSignal} signal
 */
async function writeState(typename, id, name, text, encoding, stateTypename, signal) {
  /** @type {Record<string, unknown>} */
  const body = {};
  if (encoding === "base64") {
    body.base64 = text.trim();
  } else {
    try {
      body.value = JSON.parse(text);
    } catch (error) {
      toast(
        `${name}: not JSON (${error instanceof Error ? error.message : String(error)}); a string needs "quotes"`,
        "error",
      );
      return false;
    }
  }
  if (stateTypename !== undefined && stateTypename !== "") body.typename = stateTypename;
  try {
    await api("PUT", `v1/state/${addressPath(typename, id)}/${encodeURIComponent(name)}`, { body, signal });
    toast(`Saved ${name} of ${typename}/${id}: the function's next message sees it.`);
    return true;
  } catch (error) {
    if (!signal.aborted) toast(describeError(error), "error");
    return false;
  }
}

/**
 * @param {string} typename
 * @param {string} id
 * @param {string} name
 * @param {StateEntry} entry
 * @param {{ onEdit: (editing: boolean) => void, onChanged: () => void, signal: AbortSignal }} hooks
 */
function stateRow(typename, id, name, entry, hooks) {
  const valueCell = h("td", {}, h("pre", { class: "value" }, shownValue(entry)));
  const actions = h("td", { class: "actions" });
  const row = h(
    "tr",
    { dataset: { state: name } },
    h("td", {}, name),
    h("td", {}, entry.typename, entry.encoding === "base64" ? h("div", { class: "sub" }, "bytes, as base64") : null),
    valueCell,
    h("td", {}, formatTime(entry.writtenAtMs)),
    actions,
  );

  const view = () => {
    hooks.onEdit(false);
    replace(valueCell, h("pre", { class: "value" }, shownValue(entry)));
    replace(
      actions,
      h("button", { type: "button", onclick: edit }, "Edit"),
      h("button", { type: "button", class: "danger", onclick: remove }, "Delete"),
    );
  };

  const edit = () => {
    hooks.onEdit(true);
    const editor = /** @type {HTMLTextAreaElement} */ (
      h("textarea", { class: "editor", rows: 4, spellcheck: false, value: shownValue(entry) })
    );
    replace(valueCell, editor);
    const save = async () => {
      if (await writeState(typename, id, name, editor.value, entry.encoding, entry.typename, hooks.signal)) {
        hooks.onEdit(false);
        hooks.onChanged();
      }
    };
    replace(
      actions,
      h("button", { type: "button", class: "primary", onclick: () => void save() }, "Save"),
      h("button", { type: "button", onclick: view }, "Cancel"),
    );
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) void save();
      if (event.key === "Escape") view();
    });
    editor.focus();
  };

  // Two clicks: the button asks once more before a state is gone.
  const remove = async () => {
    const button = /** @type {HTMLButtonElement} */ (actions.querySelector(".danger"));
    if (button.dataset.armed !== "yes") {
      button.dataset.armed = "yes";
      button.textContent = "Really delete?";
      setTimeout(() => {
        button.dataset.armed = "";
        button.textContent = "Delete";
      }, 3000);
      return;
    }
    try {
      const { deleted } = await api("DELETE", `v1/state/${addressPath(typename, id)}/${encodeURIComponent(name)}`, {
        signal: hooks.signal,
      });
      toast(deleted ? `Deleted ${name} of ${typename}/${id}` : `${name} held nothing`);
      hooks.onChanged();
    } catch (error) {
      if (!hooks.signal.aborted) toast(describeError(error), "error");
    }
  };

  view();
  return row;
}

/**
 * Sets a state the address does not hold yet (one its function type declares).
 * @param {string} typename
 * @param {string} id
 * @param {{ onEdit: (editing: boolean) => void, onChanged: () => void, signal: AbortSignal }} hooks
 */
function newStateForm(typename, id, hooks) {
  const name = /** @type {HTMLInputElement} */ (
    h("input", { placeholder: "state name", required: true, spellcheck: false })
  );
  const value = /** @type {HTMLTextAreaElement} */ (
    h("textarea", { rows: 2, placeholder: 'value as JSON: 42, "text", {…}', spellcheck: false })
  );
  // While something is typed here the view is not refreshed under the person's fingers.
  const typing = () => hooks.onEdit(name.value !== "" || value.value !== "");
  name.addEventListener("input", typing);
  value.addEventListener("input", typing);
  return h(
    "details",
    { class: "new-state" },
    h("summary", {}, "Set another state"),
    h(
      "form",
      {
        onsubmit: async (/** @type {Event} */ event) => {
          event.preventDefault();
          if (await writeState(typename, id, name.value.trim(), value.value, "json", undefined, hooks.signal)) {
            hooks.onEdit(false);
            hooks.onChanged();
          }
        },
      },
      name,
      value,
      h("button", { type: "submit", class: "primary" }, "Set"),
    ),
  );
}

// pydb studio: three small conveniences; every page works without them.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // /schema: compare with schema.hcl in the background instead of behind a link.
  const drift = document.querySelector("[data-src]");
  if (drift) {
    drift.classList.add("loading");
    drift.insertAdjacentHTML("beforeend", "<p class=\"note\">Comparing with schema.hcl…</p>");
    fetch(drift.dataset.src, { credentials: "same-origin" })
      .then((response) => response.text())
      .then((html) => { drift.innerHTML = html; })
      .catch(() => { drift.lastElementChild.textContent = "The comparison failed; use the link above."; })
      .finally(() => drift.classList.remove("loading"));
  }

  // Row forms: typing a value into a field unticks its NULL box (a ticked box would win over the text).
  document.querySelectorAll("form.row-form [name^='v.']").forEach((field) => {
    const box = field.form.querySelector(`[name='null.${field.name.slice(2)}']`);
    if (box) field.addEventListener("input", () => { box.checked = false; });
  });

  // /sql: Ctrl+Enter (or Cmd+Enter) runs the statement.
  const sql = document.querySelector("form.sql textarea");
  if (sql) {
    sql.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        sql.form.querySelector("button[value=run]").click();
      }
    });
  }
});

// Keeps a submission's page live: polls the release's status in the API (the signed-in
// session authenticates it) and redraws the state, the checks and the history until the
// release leaves validation and review. Text is set with textContent, never as markup.
"use strict";

(function () {
  const holder = document.getElementById("release-state");
  if (!holder || holder.dataset.live !== "1") return;
  const url = holder.dataset.statusUrl;
  const finalStates = new Set(["published", "rejected", "withdrawn", "deprecated"]);

  function row(cells, statusClass) {
    const tr = document.createElement("tr");
    cells.forEach(function (text, index) {
      const td = document.createElement("td");
      td.textContent = text === null || text === undefined ? "" : String(text);
      if (index === 1 && statusClass) td.className = "status-" + text;
      tr.appendChild(td);
    });
    return tr;
  }

  function redraw(status) {
    const badge = document.getElementById("state-badge");
    badge.textContent = status.state;
    badge.className = "badge state-" + status.state;
    const checks = document.getElementById("checks");
    if (status.checks.length) {
      checks.replaceChildren(...status.checks.map(function (check) {
        return row([check.name, check.status, check.message], true);
      }));
    }
    const events = document.getElementById("events");
    events.replaceChildren(...status.events.map(function (event) {
      return row([event.created_at.replace("T", " ").slice(0, 16), event.to_state,
                  event.actor || "the hub", event.note], false);
    }));
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (!status) return;
        redraw(status);
        if (finalStates.has(status.state)) {
          // The page's actions (withdraw, push a new version) depend on the state: reload once.
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  window.setTimeout(poll, 1500);
})();

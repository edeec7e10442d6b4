// tva dashboard: live transfers and node freshness from one server-sent-events stream.
// The server writes only when something changed; the browser never polls.
"use strict";
(function () {
  const prefix = "/ui";
  const transfers = document.querySelector("#transfers tbody");
  const nodes = document.querySelector("#nodes tbody");
  if (!transfers && !nodes) return;
  if (!window.EventSource) return;
  const state = document.getElementById("live-state");
  const source = new EventSource(prefix + "/events");
  source.addEventListener("open", () => { if (state) state.textContent = "(live)"; });
  source.addEventListener("error", () => { if (state) state.textContent = "(reconnecting…)"; });
  source.addEventListener("live", (event) => {
    const data = JSON.parse(event.data);
    if (transfers) showTransfers(data.transfers);
    if (nodes) showNodes(data.nodes);
  });

  function cell(row, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function showTransfers(list) {
    const seen = new Set();
    for (const t of list) {
      seen.add(t.id);
      let row = transfers.querySelector(`tr[data-id="${CSS.escape(t.id)}"]`);
      if (!row) {
        row = document.createElement("tr");
        row.dataset.id = t.id;
        cell(row, t.node);
        const item = cell(row, "");
        const a = document.createElement("a");
        a.href = prefix + "/item/" + encodeURIComponent(t.key);
        a.textContent = t.name;
        item.appendChild(a);
        const td = cell(row, "");
        const bar = document.createElement("progress");
        bar.max = 100;
        const pct = document.createElement("span");
        pct.className = "pct";
        td.append(bar, " ", pct);
        cell(row, "", "rate");
        cell(row, "", "peers");
        transfers.insertBefore(row, transfers.querySelector("tr.empty"));
      }
      row.querySelector("progress").value = t.percent;
      row.querySelector(".pct").textContent = t.percent.toFixed(1) + "%";
      row.querySelector(".rate").textContent = t.rate;
      row.querySelector(".peers").textContent = String(t.peers);
    }
    for (const row of transfers.querySelectorAll("tr[data-id]")) {
      if (!seen.has(row.dataset.id)) row.remove();
    }
    const empty = transfers.querySelector("tr.empty");
    if (empty) empty.hidden = list.length > 0;
    const count = document.getElementById("transfer-count");
    if (count) count.textContent = String(list.length);
  }

  function showNodes(map) {
    for (const [name, v] of Object.entries(map)) {
      const row = nodes.querySelector(`tr[data-node="${CSS.escape(name)}"]`);
      if (!row) continue;
      const badge = row.querySelector(".freshness");
      badge.textContent = v.freshness;
      badge.className = "badge freshness " + v.freshness;
      row.querySelector(".age").textContent = v.age + " ago";
    }
  }
})();

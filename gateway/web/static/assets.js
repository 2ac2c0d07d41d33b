// Assets and devices: the asset list with its state (filtered, paged), one asset's readings and state
// history; for managers also the devices no asset is bound to (with the site-file snippet that binds
// them) and the messages the gateway refused.
import { $, api, boot, el, fill, fmtTime, live, t, throttled, toast } from "./common.js";
import { readingsCharts } from "./readings.js";

const PAGE = 50;
const DEAD_PAGE = 30;

let offset = 0;
let selected = null;
let kinds = {};
let deadBefore = null;

function where(a) {
  return [a.building, a.zone, a.location].filter(Boolean).join(" · ");
}

async function loadAssets() {
  const q = new URLSearchParams({ limit: PAGE, offset });
  if ($("#f-category").value) q.set("category", $("#f-category").value);
  if ($("#f-state").value) q.set("state", $("#f-state").value);
  const data = await api(`/api/v1/assets?${q}`);
  if (!data.items.length && offset > 0 && data.total > 0) {
    offset = Math.max(0, Math.floor((data.total - 1) / PAGE) * PAGE);
    return loadAssets();
  }
  fill("#asset-list", data.items.length ? data.items.map((a) => el("li", {},
    el("button", { type: "button", class: `row asset state-${a.state}`, "data-asset": a.asset,
      "aria-pressed": String(a.asset === selected), onclick: () => select(a) },
    el("span", { class: "what" }, el("b", {}, a.asset), a.name ? ` ${a.name}` : "",
      el("small", {}, where(a))),
    el("span", { class: `badge state-${a.state}` }, t(`state.${a.state}`),
      a.faults.length ? ` · ${a.faults.join(", ")}` : "")))) : el("li", { class: "empty" }, t("as.none")));
  $("#page-info").textContent = data.total ? `${offset + 1}–${offset + data.items.length} / ${data.total}` : "0";
  $("#prev").disabled = offset === 0;
  $("#next").disabled = offset + data.items.length >= data.total;
  return data;
}

async function select(a) {
  selected = a.asset;
  for (const b of document.querySelectorAll("#asset-list button")) {
    b.setAttribute("aria-pressed", String(b.dataset.asset === selected));
  }
  const box = $("#detail");
  const history = el("div", {}, el("p", { class: "hint" }, t("loading")));
  const charts = el("div", {}, el("p", { class: "hint" }, t("loading")));
  fill(box,
    el("div", { class: "detail-head" }, el("h2", {}, `${a.asset} ${a.name || ""}`),
      el("button", { type: "button", class: "small", onclick: () => { box.hidden = true; selected = null; } }, t("close"))),
    el("dl", { class: "facts" },
      el("dt", {}, t("state")), el("dd", {}, el("span", { class: `badge state-${a.state}` }, t(`state.${a.state}`))),
      a.faults.length ? [el("dt", {}, t("as.faults")), el("dd", {}, a.faults.join(", "))] : null,
      el("dt", {}, t("category")), el("dd", {}, t(`cat.${a.category}`)),
      el("dt", {}, t("as.kind")), el("dd", {}, a.kind || "—"),
      el("dt", {}, t("as.device")), el("dd", {}, a.device || "—"),
      el("dt", {}, t("asset.location")), el("dd", {}, where(a) || "—")),
    el("h3", {}, t("readings.title")), charts,
    el("h3", {}, t("as.history")), history);
  box.hidden = false;
  if (window.matchMedia("(max-width: 800px)").matches) box.scrollIntoView({ block: "start" });
  charts.replaceChildren(await readingsCharts(a.asset));
  try {
    const since = Date.now() / 1000 - 30 * 86400;
    const data = await api(`/api/v1/assets/${encodeURIComponent(a.asset)}/states?since=${since}`);
    const rows = data.items.slice(-30).reverse();
    history.replaceChildren(rows.length ? el("div", { class: "table-wrap" }, el("table", { class: "table" },
      el("thead", {}, el("tr", {}, el("th", {}, t("time")), el("th", {}, t("state")), el("th", {}, t("as.faults")),
        el("th", {}, t("as.cause")))),
      el("tbody", {}, rows.map((r) => el("tr", {},
        el("td", {}, fmtTime(r.at, true)),
        el("td", {}, el("span", { class: `badge state-${r.state}` }, t(`state.${r.state}`))),
        el("td", {}, faults(r.faults)), el("td", {}, r.cause)))))) : el("p", { class: "hint" }, t("nodata")));
  } catch (err) {
    history.replaceChildren(el("p", { class: "hint" }, err.message));
  }
}

function faults(value) {
  try {
    const list = typeof value === "string" ? JSON.parse(value) : value;
    return Array.isArray(list) ? list.join(", ") || "—" : String(value);
  } catch (err) {
    return String(value);
  }
}

function snippet(d) {
  const category = (kinds[d.kind] && kinds[d.kind].category) || "";
  return ["[[assets]]", `id = ""            # ${t("as.snippet_id")}`, 'name = ""',
    `category = "${category}"`, `kind = "${d.kind}"`, `device = "${d.device}"`].join("\n");
}

async function loadDevices() {
  const data = await api("/api/v1/devices?unbound=true&limit=1000");
  const items = data.items.filter((d) => d.kind !== "checkpoint"); // readers are bound as readers, not assets
  fill("#device-list", items.length ? items.map((d) => {
    const pre = el("pre", { class: "snippet", tabindex: "0" }, snippet(d));
    return el("article", { class: "device", "data-device": d.device },
      el("p", {}, el("b", {}, d.device), ` · ${d.kind} · ${t("as.last_seen")} ${fmtTime(d.last_seen)}`,
        el("span", { class: `badge ${d.online ? "state-intact" : "state-unknown"}` }, t(d.online ? "online" : "offline"))),
      pre,
      el("button", { type: "button", class: "small", onclick: () => copy(pre) }, t("copy")));
  }) : el("p", { class: "empty" }, t("as.none_unbound")));
}

async function copy(pre) {
  const range = document.createRange();
  range.selectNodeContents(pre);
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(pre.textContent); toast(t("copied")); } catch (err) { /* selected */ }
  }
}

function deadRow(d) {
  const payload = d.payload.length > 160 ? `${d.payload.slice(0, 160)}…` : d.payload;
  return el("tr", { "data-dead": d.id },
    el("td", {}, fmtTime(d.at, true)),
    el("td", {}, el("b", {}, d.reason), d.detail ? el("small", {}, d.detail) : null),
    el("td", {}, d.device || "—"), el("td", {}, d.source),
    el("td", {}, el("code", {}, payload)));
}

async function loadDead(more = false) {
  const q = new URLSearchParams({ limit: DEAD_PAGE });
  if (more && deadBefore) q.set("before_id", deadBefore);
  const data = await api(`/api/v1/dead-letters?${q}`);
  $("#dead-counts").textContent = Object.entries(data.counts).map(([k, n]) => `${k}: ${n}`).join(" · ") || t("as.none_dead");
  const rows = data.items.map(deadRow);
  if (more) $("#dead-list").append(...rows);
  else fill("#dead-list", rows);
  if (data.items.length) deadBefore = data.items[data.items.length - 1].id;
  $("#older").hidden = data.items.length < DEAD_PAGE;
}

boot("/assets", async (user) => {
  const manager = user.role === "manager" || user.role === "admin";
  $("#f-category").addEventListener("change", () => { offset = 0; loadAssets(); });
  $("#f-state").addEventListener("change", () => { offset = 0; loadAssets(); });
  $("#prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadAssets(); });
  $("#next").addEventListener("click", () => { offset += PAGE; loadAssets(); });
  await loadAssets();
  if (manager) {
    $("#devices").hidden = false;
    $("#dead").hidden = false;
    kinds = await api("/api/v1/kinds");
    await Promise.all([loadDevices(), loadDead()]);
    $("#older").addEventListener("click", () => loadDead(true));
    $("#reload").addEventListener("click", async (ev) => {
      ev.currentTarget.disabled = true;
      try {
        const r = await api("/api/v1/site/reload", { method: "POST" });
        toast(t("as.reloaded", { assets: r.assets, checkpoints: r.checkpoints }));
        await Promise.all([loadAssets(), loadDevices()]);
      } finally {
        $("#reload").disabled = false;
      }
    });
  }
  live(["asset."], throttled(loadAssets, 500, 3000));
});

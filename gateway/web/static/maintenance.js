// The maintenance queue: live tickets by their next deadline, each with ONE big button for the next
// step (acknowledge -> arrive -> resolve), the SLA clocks and a countdown; expanding a ticket shows where
// the asset is and its last 24 h of readings. Below: callbacks due, with a form to record one.
import { $, api, boot, el, fill, fmtTime, countdown, live, t, throttled, toast } from "./common.js";
import { readingsCharts } from "./readings.js";

const LIVE_STATUSES = ["open", "acknowledged", "on_site"];
const CLOCKS = [["respond", "respond_by", "acknowledged_at"], ["arrive", "arrive_by", "on_site_at"],
  ["resolve", "resolve_by", "resolved_at"]];

let user = null;
let mode = location.hash === "#all" ? "all" : "mine";
let assets = new Map();
const expanded = new Set();
const charts = new Map(); // asset -> {node, at}: its charts, kept across re-renders for a minute

/** The deadline still ahead of the ticket (its first clock not yet stopped), or null. */
function next(tk) {
  for (const [name, by, done] of CLOCKS) {
    if (tk[by] !== null && tk[by] !== undefined && tk[done] === null) return { name, at: tk[by] };
  }
  return null;
}

/** The one step to take now: a general repair has no arrival deadline, so it goes straight to resolve. */
function step(tk) {
  if (tk.status === "open") return "acknowledge";
  if (tk.status === "acknowledged") return tk.arrive_by === null ? "resolve" : "arrive";
  if (tk.status === "on_site") return "resolve";
  return null;
}

/** Mine: assigned to me, or to nobody and not yet taken up by someone else. */
function mine(tk) {
  if (tk.assignee) return tk.assignee === user.name;
  const by = tk.on_site_by || tk.acknowledged_by;
  return !by || by === user.name;
}

function where(a) {
  if (!a) return "";
  return [a.building, a.zone, a.location].filter(Boolean).join(" · ");
}

async function act(tk, action, button) {
  button.disabled = true;
  try {
    await api(`/api/v1/tickets/${tk.id}/${action}`, { method: "POST", body: { note: "" } });
    toast(t(`done.${action}`, { id: tk.id }));
    await loadTickets();
  } catch (err) {
    button.disabled = false;
  }
}

function details(tk) {
  const a = assets.get(tk.asset);
  const body = el("div", { class: "more" },
    tk.asset ? el("p", {}, el("b", {}, `${t("asset.location")}: `), where(a) || "—") : null,
    tk.note ? el("p", {}, el("b", {}, `${t("note")}: `), tk.note) : null,
    el("p", { class: "hint" }, `${t("opened")} ${fmtTime(tk.opened_at)} · ${tk.opened_by === "sensor" ? t("by_sensor") : tk.opened_by}`,
      tk.occurrences > 1 ? ` · ${t("occurrences", { n: tk.occurrences })}` : ""));
  const box = el("details", { class: "expand", open: expanded.has(tk.id) },
    el("summary", {}, t("mt.more")), body);
  const showPhotos = async () => {
    const full = await api(`/api/v1/tickets/${tk.id}`, { quiet: true }).catch(() => null);
    const shots = (full ? full.timeline : []).filter((e) => e.action === "photos" && e.data && e.data.photos)
      .flatMap((e) => e.data.photos.map((p) => `/api/v1/tickets/${tk.id}/photos/${e.data.entry}/${encodeURIComponent(p.name)}`));
    if (shots.length) {
      body.prepend(el("div", { class: "previews" }, shots.map((src, i) => el("a", { href: src, target: "_blank" },
        el("img", { src, alt: t("gd.photo_n", { n: i + 1 }), loading: "lazy" })))));
    }
  };
  const showCharts = async () => {
    if (!tk.asset) return;
    const cached = charts.get(tk.asset);
    if (cached && Date.now() - cached.at < 60000) { body.append(cached.node); return; }
    const node = cached ? cached.node : el("div", { class: "readings" }, el("p", { class: "hint" }, t("loading")));
    charts.set(tk.asset, { node, at: Date.now() });
    body.append(node);
    node.replaceChildren(el("h4", {}, t("readings.title")), await readingsCharts(tk.asset));
  };
  box.addEventListener("toggle", () => {
    if (box.open) {
      expanded.add(tk.id);
      if (!box.dataset.loaded) { box.dataset.loaded = "1"; showPhotos(); }
      showCharts();
    } else expanded.delete(tk.id);
  });
  return box;
}

function card(tk) {
  const a = assets.get(tk.asset);
  const n = next(tk);
  const action = step(tk);
  const clocks = CLOCKS.filter(([name]) => tk.clocks && tk.clocks[name])
    .map(([name]) => el("li", { class: `clock ${tk.clocks[name]}`, "data-clock": name },
      `${t(`clock.${name}`)} · ${t(`cs.${tk.clocks[name]}`)}`));
  return el("article", { class: `ticket card prio-${tk.priority}`, "data-ticket": tk.id, "data-status": tk.status },
    el("div", { class: "ticket-head" },
      el("span", { class: `badge prio-${tk.priority}` }, t(`prio.${tk.priority}`)),
      el("h3", {}, tk.title),
      el("span", { class: `badge status-${tk.status}`, "data-role": "status" }, t(`st.${tk.status}`))),
    el("p", { class: "asset" }, `#${tk.id}`, tk.asset ? ` · ${tk.asset}${a && a.name ? ` ${a.name}` : ""}` : "",
      tk.assignee ? ` · ${t("assignee")}: ${tk.assignee}` : ""),
    clocks.length ? el("ul", { class: "clocks" }, clocks) : null,
    n ? el("p", { class: "deadline" }, `${t(`due.${n.name}`)} ${fmtTime(n.at)} · `,
      el("span", { class: "countdown", "data-deadline": n.at }, countdown(n.at))) : null,
    action ? el("button", { type: "button", class: `big primary step-${action}`, "data-action": action,
      onclick: (ev) => act(tk, action, ev.currentTarget) }, t(`act.${action}`)) : null,
    details(tk));
}

async function loadTickets() {
  const query = LIVE_STATUSES.map((s) => `status=${s}`).join("&");
  const data = await api(`/api/v1/tickets?${query}&sort=deadline&limit=1000`);
  let items = data.items.filter((tk) => LIVE_STATUSES.includes(tk.status));
  if (mode === "mine") items = items.filter(mine);
  const key = (tk) => (next(tk) ? next(tk).at : Infinity);
  items.sort((x, y) => key(x) - key(y) || x.id - y.id);
  $("#ticket-count").textContent = t("mt.count", { n: items.length });
  fill("#tickets", items.length ? items.map(card) : el("p", { class: "empty" }, t(mode === "mine" ? "mt.none_mine" : "mt.none")));
}

function callbackForm(tk) {
  const id = `cb-${tk.id}`;
  const form = el("form", { class: "card callback", "data-ticket": tk.id },
    el("h3", {}, `#${tk.id} ${tk.title}`),
    el("p", { class: "hint" }, `${t("cb.due")} ${fmtTime(tk.callback_due)} · `,
      el("span", { class: "countdown", "data-deadline": tk.callback_due }, countdown(tk.callback_due))),
    el("label", { for: `${id}-channel` }, t("cb.channel")),
    el("select", { id: `${id}-channel`, name: "channel" },
      ["phone", "visit", "wechat", "sms", "other"].map((c) => el("option", { value: c }, t(`ch.${c}`)))),
    el("label", { for: `${id}-score` }, t("cb.score")),
    el("select", { id: `${id}-score`, name: "score" },
      [5, 4, 3, 2, 1].map((s) => el("option", { value: s }, `${s} · ${t(`score.${s}`)}`))),
    el("label", { for: `${id}-note` }, t("note")),
    el("input", { id: `${id}-note`, name: "note", maxlength: 2000 }),
    el("button", { type: "submit", class: "big" }, t("cb.save")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await api(`/api/v1/tickets/${tk.id}/callbacks`, { method: "POST", body: {
        channel: form.elements.channel.value, score: Number(form.elements.score.value), note: form.elements.note.value } });
      toast(t("cb.saved", { id: tk.id }));
      await loadCallbacks();
    } catch (err) {
      button.disabled = false;
    }
  });
  return form;
}

async function loadCallbacks() {
  const data = await api("/api/v1/tickets?status=closed&callback_due=true&limit=200");
  const due = data.items.filter((tk) => tk.callback_due !== null && !(tk.callbacks && tk.callbacks.length))
    .sort((x, y) => x.callback_due - y.callback_due);
  fill("#callback-list", due.length ? due.map(callbackForm) : el("p", { class: "empty" }, t("cb.none")));
}

async function loadAssets() {
  const data = await api("/api/v1/assets?limit=5000");
  assets = new Map(data.items.map((a) => [a.asset, a]));
}

function setMode(m, reload = true) {
  mode = m;
  $("#show-mine").setAttribute("aria-pressed", String(m === "mine"));
  $("#show-all").setAttribute("aria-pressed", String(m === "all"));
  if (!reload) return;
  history.replaceState(null, "", m === "all" ? "#all" : location.pathname);
  loadTickets();
}

boot("/maintenance", async (u) => {
  user = u;
  $("#show-mine").addEventListener("click", () => setMode("mine"));
  $("#show-all").addEventListener("click", () => setMode("all"));
  setMode(mode, false);
  await loadAssets();
  await Promise.all([loadTickets(), loadCallbacks()]);
  const tickets = throttled(loadTickets, 300, 1000);
  const callbacks = throttled(loadCallbacks, 300, 2000);
  live(["ticket.", "callback.", "asset."], (type) => {
    if (type.startsWith("ticket.") || type === "reconnected") tickets();
    if (type === "ticket.closed" || type.startsWith("callback.") || type === "reconnected") callbacks();
  });
  setInterval(() => {
    for (const c of document.querySelectorAll(".countdown")) {
      const at = Number(c.dataset.deadline);
      c.textContent = countdown(at);
      c.classList.toggle("over", at < Date.now() / 1000);
    }
  }, 1000);
  setInterval(tickets, 60000); // the clocks' states move with time, not only with events
});

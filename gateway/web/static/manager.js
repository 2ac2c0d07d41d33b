// The manager's dashboard: one call (GET /api/v1/dashboard) drawn as commitment tiles, daily intact-rate
// charts, live tickets by SLA state and priority, today's rounds and the callbacks due. It re-fetches on
// events, at most every 5 s, and every minute anyway (clocks move without events).
import { $, api, boot, el, fill, fmtTime, lang, live, pct, PRIORITIES, t, throttled } from "./common.js";
import { lineChart } from "./chart.js";

const SIGN = { ">=": "≥", "<=": "≤" };

function forecast(f) {
  if (!f) return null;
  if (f.can_meet) {
    return el("p", { class: "forecast ok" }, t("fc.can", { h: (Math.round(f.left_h * 10) / 10).toFixed(1) }));
  }
  const best = f.best_case && f.best_case.value !== undefined ? ` (${t("fc.best")} ${pct(f.best_case.value)})` : "";
  return el("p", { class: "forecast bad" }, t("fc.cannot") + best);
}

function tile(c) {
  const state = c.met === null || c.met === undefined ? "none" : c.met ? "met" : "missed";
  const whole = Number.isInteger(c.num) && Number.isInteger(c.den) && c.den > 0;
  return el("article", { class: `tile ${state}`, "data-commitment": c.id },
    el("h3", {}, lang() === "zh" ? c.zh : c.en),
    el("p", { class: "figure" },
      el("span", { class: "value" }, pct(c.value)),
      el("span", { class: "target" }, `${t("target")} ${SIGN[c.direction] || c.direction} `,
        el("b", { class: "target-num" }, pct(c.target)))),
    el("p", { class: "verdict" }, t(`met.${state}`), whole ? ` · ${c.num}/${c.den}` : ""),
    forecast(c.forecast));
}

function chart(c) {
  const days = c.daily || [];
  const values = days.map((d) => d[1]).filter((v) => v !== null);
  const low = Math.min(c.target, ...values);
  const yMin = Math.max(0, Math.floor((low - (1 - low) * 0.5 - 0.001) * 100) / 100);
  const points = days.map(([day, v]) => [Number(day.slice(8, 10)), v]);
  return el("figure", { class: "card chart-card", "data-chart": c.id },
    el("figcaption", {}, lang() === "zh" ? c.zh : c.en),
    values.length ? lineChart(points, { yMin, yMax: 1, target: c.target, yLabel: pct,
      xLabel: (d) => `${days[0][0].slice(5, 7)}-${String(d).padStart(2, "0")}`,
      title: `${lang() === "zh" ? c.zh : c.en}: ${t("target")} ${pct(c.target)}`,
      cls: c.met === false ? "bad" : "" }) : el("p", { class: "hint" }, t("nodata")));
}

function count(key, n, cls) {
  return el("div", { class: `count ${cls || ""}`, "data-count": key },
    el("b", { class: "num" }, String(n ?? 0)), el("span", {}, t(key)));
}

function roundRow(r) {
  const done = r.visits.filter((v) => v.at !== null).length;
  return el("li", { class: `row round-${r.state}`, "data-round": r.id },
    el("span", { class: "when" }, fmtTime(r.due_at)),
    el("span", { class: "what" }, r.route_name || r.route, r.guard ? ` · ${r.guard}` : ""),
    el("span", { class: "progress" }, `${done}/${r.visits.length}`),
    el("span", { class: `badge state-${r.state}` }, t(`round.${r.state}`)));
}

function monthsBack(month, n) {
  let [y, m] = month.split("-").map(Number);
  const out = [];
  for (let i = 0; i < n; i += 1) {
    out.push(`${y}-${String(m).padStart(2, "0")}`);
    m -= 1;
    if (m === 0) { m = 12; y -= 1; }
  }
  return out;
}

function reportLink() {
  const month = $("#report-month").value;
  const language = $("#report-lang").value;
  $("#report-link").href = `/api/v1/commitments/report?month=${encodeURIComponent(month)}&lang=${language}`;
}

let reportMonth = null;

function render(d) {
  $("#updated").textContent = fmtTime(d.at, false);
  $("#month").textContent = d.month;
  fill("#commitments", d.commitments.map(tile));
  const charted = d.commitments.filter((c) => Array.isArray(c.daily));
  fill("#charts", charted.length ? charted.map(chart) : el("p", { class: "hint" }, t("nodata")));
  const s = d.tickets.sla;
  fill("#sla", count("sla.on_time", s.on_time, "ok"), count("sla.at_risk", s.at_risk, "warn"),
    count("sla.overdue", s.overdue, "bad"), count("tickets.live", d.tickets.live));
  fill("#priorities", PRIORITIES.map((p) => count(`prio.${p}`, d.tickets.by_priority[p], `prio-${p}`)));
  fill("#categories", el("table", { class: "table" },
    el("thead", {}, el("tr", {}, el("th", {}, t("category")), el("th", {}, t("state.intact")),
      el("th", {}, t("state.faulty")), el("th", {}, t("state.unknown")))),
    el("tbody", {}, Object.entries(d.categories).map(([cat, n]) => el("tr", { "data-category": cat },
      el("th", {}, t(`cat.${cat}`)), el("td", {}, String(n.intact)),
      el("td", { class: n.faulty ? "bad" : "" }, String(n.faulty)),
      el("td", { class: n.unknown ? "warn" : "" }, String(n.unknown)))))));
  const v = d.patrols.visits;
  fill("#visits", count("visit.on_time", v.on_time, "ok"), count("visit.late", v.late, "warn"),
    count("visit.missed", v.missed, "bad"), count("visit.pending", v.pending));
  fill("#rounds", d.patrols.rounds.length ? d.patrols.rounds.map(roundRow) : el("li", { class: "hint" }, t("rounds.none")));
  $("#callbacks").textContent = String(d.callbacks_due);
  if (reportMonth !== d.month) {
    reportMonth = d.month;
    const prev = $("#report-month").value;
    fill("#report-month", monthsBack(d.month, 13).map((m) => el("option", { value: m }, m)));
    if (prev) $("#report-month").value = prev;
    reportLink();
  }
}

async function load() {
  render(await api("/api/v1/dashboard"));
}

boot("/manager", async () => {
  $("#report-lang").value = lang();
  $("#report-month").addEventListener("change", reportLink);
  $("#report-lang").addEventListener("change", reportLink);
  await load();
  const refresh = throttled(load, 1000, 5000);
  live(["ticket.", "callback.", "asset.", "patrol.", "inspection.", "fire."], refresh);
  setInterval(refresh, 60000);
});

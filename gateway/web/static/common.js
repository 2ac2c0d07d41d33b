// Shared by every page: API calls with their errors shown in the page, the header, times in the
// site's time zone, the live event stream, and a small DOM builder (no markup from strings: data stays text).
import { t, lang, setLang, applyI18n } from "./i18n.js";

export { t, lang, applyI18n };

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content || "";
export const SITE = meta("site");
export const TZ = meta("tz") || "Asia/Shanghai";
export const HOME = { admin: "/manager", manager: "/manager", maintenance: "/maintenance", guard: "/guard" };
const NAV = [
  ["/manager", "nav.manager", ["manager"]],
  ["/maintenance", "nav.maintenance", ["manager", "maintenance"]],
  ["/guard", "nav.guard", ["manager", "guard"]],
  ["/assets", "nav.assets", ["manager", "maintenance"]],
];

/** Build an element: el("p", {class: "x", onclick: fn}, "text", child). Strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const e = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** Replace a container's children. */
export function fill(target, ...children) {
  const node = typeof target === "string" ? $(target) : target;
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

// -- messages ---------------------------------------------------------------------------------------

/** Show an error (role=alert) at the top of the page; empty clears it. */
export function showError(text) {
  const box = $("#msg");
  if (!box) return;
  box.textContent = text || "";
  box.hidden = !text;
}

/** A short confirmation that fades away (role=status). */
export function toast(text, ok = true) {
  const box = $("#toast");
  if (!box) return;
  box.textContent = text;
  box.className = ok ? "toast ok" : "toast bad";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 4000);
}

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

function toLogin() {
  location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
}

/**
 * Call the API; JSON in and out. An error answer ({"error": {code, message, field}}) is shown in the
 * page (unless opts.quiet) and thrown as ApiError; 401 (session gone) goes to the login page.
 */
export async function api(path, opts = {}) {
  const init = { method: opts.method || "GET", headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (opts.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    const e = new ApiError(0, t("err.network"));
    if (!opts.quiet) showError(e.message);
    throw e;
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (err) {
    data = null;
  }
  if (res.ok) return data;
  const info = (data && data.error) || {};
  const e = new ApiError(res.status, info.message || `${res.status} ${res.statusText}`, info.field);
  if (res.status === 401 && !opts.noRedirect) {
    toLogin();
  } else if (res.status === 403 && info.field === "password" && !opts.noRedirect) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
  }
  if (!opts.quiet) showError(e.message);
  throw e;
}

export const me = () => api("/api/v1/auth/me");

// -- time and numbers -------------------------------------------------------------------------------

const fmtCache = new Map();
function fmt(options) {
  const key = JSON.stringify(options) + lang();
  if (!fmtCache.has(key)) {
    fmtCache.set(key, new Intl.DateTimeFormat(lang() === "zh" ? "zh-CN" : "en-GB",
      { timeZone: TZ, hour12: false, ...options }));
  }
  return fmtCache.get(key);
}

/** Epoch seconds as site-local time: "14:05", or with the date when it is not today. */
export function fmtTime(epoch, withDate = null) {
  if (epoch === null || epoch === undefined) return "—";
  const d = new Date(epoch * 1000);
  const day = (x) => fmt({ year: "numeric", month: "2-digit", day: "2-digit" }).format(x);
  const showDate = withDate === null ? day(d) !== day(new Date()) : withDate;
  const time = fmt({ hour: "2-digit", minute: "2-digit" }).format(d);
  return showDate ? `${fmt({ month: "2-digit", day: "2-digit" }).format(d)} ${time}` : time;
}

/** Today's date in the site's time zone, "2026-11-21". */
export function siteDay(epoch = Date.now() / 1000) {
  const parts = fmt({ year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(new Date(epoch * 1000));
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** A duration in seconds as "2 h 05 min" / "12 min" / "40 s". */
export function fmtDuration(seconds) {
  const s = Math.abs(Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h >= 48) return t("dur.d", { d: Math.floor(h / 24), h: h % 24 });
  if (h > 0) return t("dur.h", { h, m: String(m).padStart(2, "0") });
  if (m > 0) return t("dur.m", { m });
  return t("dur.s", { s });
}

/** "in 12 min" or "12 min overdue" from a deadline in epoch seconds. */
export function countdown(deadline) {
  const left = deadline - Date.now() / 1000;
  return left >= 0 ? t("cd.left", { d: fmtDuration(left) }) : t("cd.over", { d: fmtDuration(left) });
}

/** A fraction as a percentage, like the printed notice: 0.9950 -> "99.5%", 1 -> "100%". */
export function pct(v) {
  if (v === null || v === undefined) return "—";
  return `${(v * 100).toFixed(2)}%`.replace(".00%", "%");
}

// -- live updates -----------------------------------------------------------------------------------

/**
 * Call fn at most once per `gap` ms, `delay` ms after the first request of a burst (events come in
 * bursts: a dozen lamps of one circuit going dark at once should cost one fetch).
 */
export function throttled(fn, delay = 400, gap = 0) {
  let timer = null;
  let last = 0;
  let running = false;
  let again = false;
  const run = async () => {
    timer = null;
    if (running) { again = true; return; }
    running = true;
    last = Date.now();
    try { await fn(); } catch (err) { /* shown by api() */ }
    running = false;
    if (again) { again = false; schedule(); }
  };
  const schedule = () => {
    if (timer) return;
    const wait = Math.max(delay, last + gap - Date.now());
    timer = setTimeout(run, wait);
  };
  return schedule;
}

const EVENT_TYPES = [
  "ticket.opened", "ticket.reopened", "ticket.self_cleared", "ticket.acknowledge", "ticket.acknowledged",
  "ticket.arrive", "ticket.resolve", "ticket.closed", "ticket.cancel", "ticket.assign", "ticket.escalated",
  "callback.recorded", "callback.overdue", "asset.state", "fire.alarm", "inspection.recorded",
  "inspection.overdue", "patrol.round_missed", "patrol.late", "patrol.missed", "patrol.flagged",
];

/**
 * Listen to the server-sent events whose type starts with one of `prefixes` ("ticket.", "patrol.").
 * The browser reconnects by itself after a network error (sending Last-Event-ID); when the server
 * refuses (stream closed), this reconnects with a growing pause and resumes after the last event
 * seen. `onEvent(type, data)` is called per event and `onEvent("reconnected")` after a reconnect
 * (something may have been missed: re-fetch).
 */
export function live(prefixes, onEvent) {
  let lastId = null;
  let pause = 1000;
  let opened = false;
  const status = $("#live");
  const show = (state) => {
    if (!status) return;
    status.dataset.state = state;
    status.textContent = t(`live.${state}`);
  };
  const connect = () => {
    const url = "/api/v1/events/stream" + (lastId !== null ? `?after=${lastId}` : "");
    const source = new EventSource(url);
    source.onopen = () => {
      pause = 1000;
      show("on");
      if (opened) onEvent("reconnected", null);
      opened = true;
    };
    const handle = (ev) => {
      if (ev.lastEventId) lastId = ev.lastEventId;
      let data = null;
      try { data = JSON.parse(ev.data); } catch (err) { data = null; }
      onEvent(ev.type, data);
    };
    for (const type of EVENT_TYPES) {
      if (prefixes.some((p) => type.startsWith(p))) source.addEventListener(type, handle);
    }
    source.onerror = async () => {
      if (source.readyState !== EventSource.CLOSED) { show("retry"); return; }
      show("off");
      source.close();
      try {
        await api("/api/v1/auth/me", { quiet: true }); // 401: goes to the login page
      } catch (err) { /* network down: keep trying */ }
      setTimeout(connect, pause);
      pause = Math.min(pause * 2, 30000);
    };
  };
  connect();
}

// -- the page frame ---------------------------------------------------------------------------------

function languageButton() {
  const other = lang() === "zh" ? "en" : "zh";
  return el("button", { type: "button", class: "lang", lang: other === "zh" ? "zh-CN" : "en",
    onclick: () => { setLang(other); location.reload(); } }, other === "zh" ? "中文" : "English");
}

/** The header: site, navigation for the role, the user, language, logout. */
export function header(user, current) {
  const role = user ? user.role : null;
  const links = NAV.filter(([, , roles]) => role === "admin" || roles.includes(role))
    .map(([href, key]) => el("a", { href, "aria-current": href === current ? "page" : null }, t(key)));
  const logout = el("button", { type: "button", class: "logout", onclick: async () => {
    try { await api("/api/v1/auth/logout", { method: "POST", quiet: true, noRedirect: true }); } catch (err) { /* gone */ }
    location.assign("/login");
  } }, t("logout"));
  fill("#top",
    el("div", { class: "bar" },
      el("a", { class: "site", href: "/" }, SITE || t("site")),
      el("span", { class: "who" }, user ? `${user.name} · ${t(`role.${role}`)}` : ""),
      el("span", { id: "live", class: "live", "data-state": "off" }),
      languageButton(),
      user ? logout : null),
    links.length > 1 ? el("nav", { "aria-label": t("nav") }, links) : null);
}

/** Start a page: texts in the chosen language, who is logged in, the header; then `init(user)`. */
export async function boot(current, init) {
  applyI18n(document);
  let user = null;
  try {
    user = await me();
  } catch (err) {
    header(null, current);
    return;
  }
  if (user.must_change) {
    location.assign(`/login?next=${encodeURIComponent(current)}`);
    return;
  }
  header(user, current);
  try {
    await init(user);
  } catch (err) {
    if (!(err instanceof ApiError)) showError(String(err));
  }
}

export const PRIORITIES = ["emergency", "urgent", "general"];

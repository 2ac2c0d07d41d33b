// The guard's page: the round under way and its next checkpoint; a tap by Web NFC where the phone has it
// (Chrome on Android), else the tag typed in or picked from the list; a problem reported with a photo.
import { $, api, boot, el, fill, fmtTime, live, showError, t, throttled, toast } from "./common.js";

const MAX_PHOTO_PX = 1600;
const MAX_PHOTOS = 5;

let user = null;
let checkpoints = new Map(); // id -> checkpoint
let photos = []; // base64 JPEG, no data: prefix

const name = (id) => (checkpoints.get(id) && checkpoints.get(id).name) || id;

/** The round to walk now: mine under way, else any under way, else the next one due. */
function currentRound(items) {
  const started = items.filter((r) => r.state === "started");
  return started.find((r) => r.guard === user.name) || started[0]
    || items.filter((r) => r.state === "due").sort((a, b) => a.due_at - b.due_at)[0] || null;
}

function visitRow(v, nextId) {
  return el("li", { class: `row visit-${v.status}${v.checkpoint === nextId ? " next" : ""}`, "data-checkpoint": v.checkpoint },
    el("span", { class: "what" }, name(v.checkpoint)),
    el("span", { class: "when" }, v.at !== null ? fmtTime(v.at) : `~${fmtTime(v.expected_at)}`),
    el("span", { class: `badge visit-${v.status}` }, v.at !== null ? `✓ ${t(`visit.${v.status}`)}` : t(`visit.${v.status}`)));
}

function renderRound(r) {
  if (!r) {
    fill("#round", el("p", { class: "empty" }, t("rounds.none")));
    return;
  }
  const done = r.visits.filter((v) => v.at !== null).length;
  const next = r.visits.find((v) => v.at === null && v.status !== "missed");
  fill("#round",
    el("p", { class: "round-title", "data-round": r.id },
      el("b", {}, r.route_name || r.route), ` · ${t("round.due_at")} ${fmtTime(r.due_at)} · `,
      el("span", { class: `badge state-${r.state}` }, t(`round.${r.state}`))),
    el("label", { for: "progress", class: "progress-label" }, t("gd.progress", { done, n: r.visits.length })),
    el("progress", { id: "progress", max: r.visits.length, value: done }),
    next ? el("p", { class: "next-checkpoint" }, el("span", {}, t("gd.next")),
      el("b", { id: "next-name" }, name(next.checkpoint)), el("span", { class: "hint" }, `~${fmtTime(next.expected_at)}`))
      : el("p", { class: "next-checkpoint done" }, t(done === r.visits.length ? "gd.all_done" : "gd.no_next")),
    el("ol", { class: "rows visits" }, r.visits.map((v) => visitRow(v, next && next.checkpoint))));
}

async function loadRounds() {
  const data = await api("/api/v1/rounds");
  const items = data.items;
  renderRound(currentRound(items));
  const today = items.slice().sort((a, b) => a.due_at - b.due_at);
  fill("#rounds", today.length ? today.map((r) => el("li", { class: `row round-${r.state}`, "data-round": r.id },
    el("span", { class: "when" }, fmtTime(r.due_at)), el("span", { class: "what" }, r.route_name || r.route),
    el("span", { class: "progress" }, `${r.visits.filter((v) => v.at !== null).length}/${r.visits.length}`),
    el("span", { class: `badge state-${r.state}` }, t(`round.${r.state}`)))) : el("li", { class: "hint" }, t("rounds.none")));
}

const refresh = throttled(loadRounds, 300, 1000);

async function tap(tag) {
  const box = $("#tap-result");
  try {
    const answer = await api("/api/v1/taps", { method: "POST", body: { tag } });
    box.className = answer.checkpoint ? "result ok" : "result bad";
    box.textContent = answer.checkpoint ? t("gd.recorded", { name: name(answer.checkpoint) })
      : t("gd.unknown", { tag: answer.tag });
    box.hidden = false;
    if (navigator.vibrate) navigator.vibrate(answer.checkpoint ? 80 : [60, 60, 60]);
    // The gateway records the tap on its ingest thread: look again in a moment.
    setTimeout(refresh, 500);
    setTimeout(refresh, 2000);
    return Boolean(answer.checkpoint);
  } catch (err) {
    box.hidden = true;
    return false;
  }
}

function setupNfc() {
  if (!("NDEFReader" in window)) return;
  const button = $("#nfc");
  const state = $("#nfc-state");
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      const reader = new window.NDEFReader();
      await reader.scan();
      button.disabled = true;
      state.textContent = t("gd.scanning");
      state.hidden = false;
      reader.addEventListener("reading", (ev) => { if (ev.serialNumber) tap(ev.serialNumber); });
      reader.addEventListener("readingerror", () => { state.textContent = t("gd.nfc_error"); });
    } catch (err) {
      state.textContent = `${t("gd.nfc_error")} ${err.message || ""}`;
      state.hidden = false;
    }
  });
}

/** A photo made smaller (at most 1600 px on its longer side) as JPEG, base64 without the data: prefix. */
async function downscale(file) {
  const url = URL.createObjectURL(file);
  try {
    const img = await new Promise((resolve, reject) => {
      const i = new Image();
      i.onload = () => resolve(i);
      i.onerror = () => reject(new Error(t("gd.bad_photo")));
      i.src = url;
    });
    const scale = Math.min(1, MAX_PHOTO_PX / Math.max(img.naturalWidth, img.naturalHeight));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
    canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
    canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
    const dataUrl = canvas.toDataURL("image/jpeg", 0.85);
    return dataUrl.slice(dataUrl.indexOf(",") + 1);
  } finally {
    URL.revokeObjectURL(url);
  }
}

function showPhotos() {
  fill("#previews", photos.map((p, i) => el("figure", {},
    el("img", { src: `data:image/jpeg;base64,${p}`, alt: t("gd.photo_n", { n: i + 1 }) }),
    el("button", { type: "button", class: "small", onclick: () => { photos.splice(i, 1); showPhotos(); } }, t("remove")))));
}

function setupReport() {
  const form = $("#problem");
  $("#p-photo").addEventListener("change", async (ev) => {
    for (const file of ev.target.files) {
      if (photos.length >= MAX_PHOTOS) break;
      try { photos.push(await downscale(file)); } catch (err) { showError(err.message); }
    }
    ev.target.value = "";
    showPhotos();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const body = { title: form.elements.title.value.trim(), priority: form.elements.priority.value, note: form.elements.note.value };
    if (form.elements.asset.value.trim()) body.asset = form.elements.asset.value.trim();
    if (photos.length) body.photos = photos;
    try {
      const ticket = await api("/api/v1/tickets", { method: "POST", body });
      toast(t("gd.reported", { id: ticket.id }));
      form.reset();
      photos = [];
      showPhotos();
    } catch (err) {
      if (err.field) form.querySelector(`[name="${err.field}"]`)?.focus();
    } finally {
      button.disabled = false;
    }
  });
}

boot("/guard", async (u) => {
  user = u;
  setupNfc();
  setupReport();
  const data = await api("/api/v1/checkpoints");
  checkpoints = new Map(data.items.map((c) => [c.id, c]));
  fill("#checkpoint", el("option", { value: "" }, t("gd.pick_none")),
    data.items.map((c) => el("option", { value: c.id }, c.name ? `${c.name} (${c.id})` : c.id)));
  $("#checkpoint").addEventListener("change", (ev) => {
    const c = checkpoints.get(ev.target.value);
    $("#tag").value = c ? c.tag : "";
  });
  $("#manual").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const ok = await tap($("#tag").value.trim());
    if (ok) { $("#tag").value = ""; $("#checkpoint").value = ""; }
    $("#tag").focus();
  });
  await loadRounds();
  live(["patrol."], refresh);
  setInterval(refresh, 30000);
});

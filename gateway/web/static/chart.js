// Line charts as inline SVG, drawn by hand (no library: the site LAN has no CDN and pages stay small).
// Colours come from app.css classes, so the charts follow the page's contrast.
import { el } from "./common.js";

const W = 320;
const H = 150;
const PAD = { l: 50, r: 8, t: 10, b: 24 };

const svg = (tag, attrs, ...children) => el(`svg:${tag}`, attrs, ...children);

/**
 * A line chart.
 *   points: [[x, y|null], ...] (x ascending; null breaks the line)
 *   opts: {yMin, yMax, target (dashed line), xLabel(x) -> text, yLabel(y) -> text, step (0/1 values),
 *          title (accessible name), cls (extra class of the line)}
 */
export function lineChart(points, opts = {}) {
  const ys = points.map((p) => p[1]).filter((y) => y !== null && y !== undefined);
  const xs = points.map((p) => p[0]);
  let yMin = opts.yMin ?? Math.min(...ys, opts.target ?? Infinity);
  let yMax = opts.yMax ?? Math.max(...ys, opts.target ?? -Infinity);
  if (!Number.isFinite(yMin) || !Number.isFinite(yMax)) { yMin = 0; yMax = 1; }
  if (yMax === yMin) { // a flat line: some room around it, never below zero for a measure that is not
    const pad = Math.abs(yMax) * 0.2 || 1;
    if (opts.yMax === undefined) yMax += pad;
    if (opts.yMin === undefined) yMin = yMin >= 0 && yMin - pad < 0 ? 0 : yMin - pad;
  }
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const sx = (x) => PAD.l + (xMax === xMin ? 0.5 : (x - xMin) / (xMax - xMin)) * (W - PAD.l - PAD.r);
  const sy = (y) => PAD.t + (1 - (y - yMin) / (yMax - yMin)) * (H - PAD.t - PAD.b);
  const yLabel = opts.yLabel || ((y) => String(Math.round(y * 100) / 100));
  const xLabel = opts.xLabel || ((x) => String(x));

  const parts = [];
  let path = "";
  let pen = false;
  let prevY = null;
  for (const [x, y] of points) {
    if (y === null || y === undefined) { pen = false; continue; }
    if (pen && opts.step && prevY !== null) path += `L${sx(x).toFixed(1)},${sy(prevY).toFixed(1)}`;
    path += `${pen ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`;
    pen = true;
    prevY = y;
  }
  const target = opts.target ?? null;
  const clash = (y) => target !== null && Math.abs(sy(y) - sy(target)) < 12; // the target's label wins
  for (const y of [yMin, yMax]) {
    parts.push(svg("line", { class: "grid", x1: PAD.l, x2: W - PAD.r, y1: sy(y), y2: sy(y) }));
    if (!clash(y)) parts.push(svg("text", { class: "tick", x: PAD.l - 4, y: sy(y) + 4, "text-anchor": "end" }, yLabel(y)));
  }
  if (target !== null) {
    parts.push(svg("line", { class: "target", x1: PAD.l, x2: W - PAD.r, y1: sy(target), y2: sy(target) }));
    parts.push(svg("text", { class: "tick target-label", x: PAD.l - 4, y: sy(target) + 4, "text-anchor": "end" },
      yLabel(target)));
  }
  if (points.length) {
    parts.push(svg("text", { class: "tick", x: PAD.l, y: H - 6 }, xLabel(xMin)));
    parts.push(svg("text", { class: "tick", x: W - PAD.r, y: H - 6, "text-anchor": "end" }, xLabel(xMax)));
  }
  parts.push(svg("path", { class: `line ${opts.cls || ""}`, d: path }));
  // Lone points (a value between two gaps) would not show as a line: mark each point when few.
  if (ys.length <= 40) {
    for (const [x, y] of points) {
      if (y !== null && y !== undefined) parts.push(svg("circle", { class: `dot ${opts.cls || ""}`, cx: sx(x), cy: sy(y), r: 2.5 }));
    }
  }
  return svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.title || "",
    preserveAspectRatio: "xMidYMid meet" }, opts.title ? svg("title", {}, opts.title) : null, ...parts);
}

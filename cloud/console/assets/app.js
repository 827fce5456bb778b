"use strict";
// tankguard fleet console. Snapshot from the JSON API, then live updates
// from /api/events (Server-Sent Events). Built for 1,000 trucks: events
// only update plain objects; drawing happens at most once per animation
// frame (requestAnimationFrame), the map is one canvas, and the fleet list
// reuses a fixed pool of row elements (virtual scrolling).

const $ = (s) => document.querySelector(s);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
const fmt = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
const COLORS = { normal: "#2e9e44", warning: "#f0a202", critical: "#d7263d", offline: "#8a8f98" };
const SEV_RANK = { critical: 3, warning: 2, info: 1, none: 0 };
const STATE_RANK = { open: 0, acknowledged: 1, resolved: 2 };
const isZero = (t) => !t || t.startsWith("0001");
const ago = (t) => {
  if (isZero(t)) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(t)) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min ago";
};
const clock = (t) => (isZero(t) ? "–" : new Date(t).toLocaleTimeString([], { hour12: false }));

const S = {
  me: null, cfg: {}, trucks: new Map(), incidents: new Map(), openByTruck: new Map(),
  sort: { key: "status", dir: -1 }, filter: "", status: "", rows: [], route: { view: "fleet" },
  dirty: { map: false, list: false, feed: false, counts: false, truck: false }, rendered: 0,
  shownAt: {}, renderMs: 0, maxRenderMs: 0, events: 0, marks: {},
};
window.tankguard = S; // for tests and debugging (S.map is the map)

// ---- API ----
async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.method && opts.method !== "GET") {
    headers["Content-Type"] = "application/json";
    if (S.me) headers["X-CSRF-Token"] = S.me.csrf;
  }
  const r = await fetch(path, { credentials: "same-origin", ...opts, headers });
  if (r.status === 401) { toLogin(); throw new Error("signed out"); }
  return r;
}
function toLogin() { location.replace("/login?next=" + encodeURIComponent(location.pathname + location.hash)); }

// ---- scheduling: one render per animation frame at most ----
let frameQueued = false;
function invalidate(...parts) {
  for (const p of parts) S.dirty[p] = true;
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(() => {
    frameQueued = false;
    const t0 = performance.now();
    const d = S.dirty;
    S.dirty = { map: false, list: false, feed: false, counts: false, truck: false };
    if (S.route.view === "fleet") {
      if (d.map) map.draw();
      if (d.list) renderList();
      if (d.feed) renderFeed();
    } else if (d.truck || d.feed) {
      renderTruck(d.truck);
    }
    if (d.counts) renderCounts();
    const ms = performance.now() - t0;
    S.renderMs += ms; S.maxRenderMs = Math.max(S.maxRenderMs, ms);
    S.rendered++;
    document.body.dataset.rendered = S.rendered;
  });
}

// ---- derived state ----
function recountOpen() {
  S.openByTruck.clear();
  for (const i of S.incidents.values()) {
    if (i.state === "resolved") continue;
    const o = S.openByTruck.get(i.truck) || { n: 0, sev: "none" };
    o.n++;
    if ((SEV_RANK[i.severity] || 0) > (SEV_RANK[o.sev] || 0)) o.sev = i.severity;
    S.openByTruck.set(i.truck, o);
  }
}
// status: the truck's own (offline, alert severity) raised by any open
// incident's severity.
function status(t) {
  if (t.status === "offline" || !t.online) return "offline";
  let s = t.status || "normal";
  const o = S.openByTruck.get(t.id);
  if (o && (SEV_RANK[o.sev] || 0) > (SEV_RANK[s] || 0) && (o.sev === "warning" || o.sev === "critical")) s = o.sev;
  return s;
}

// ---- map: Web Mercator on one canvas; tiles if configured, else a graticule ----
const map = {
  canvas: null, ctx: null, w: 0, h: 0, dpr: 1, cx: 0.5, cy: 0.5, z: 3, fitted: false, tiles: new Map(), hover: null,
  init() {
    this.canvas = $("#map");
    this.ctx = this.canvas.getContext("2d");
    new ResizeObserver(() => { this.resize(); invalidate("map"); }).observe(this.canvas);
    let drag = null;
    this.canvas.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, cx: this.cx, cy: this.cy, moved: false }; this.canvas.setPointerCapture(e.pointerId); });
    this.canvas.addEventListener("pointermove", (e) => {
      if (drag) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        const s = this.scale();
        this.cx = drag.cx - dx / s; this.cy = drag.cy - dy / s; this.fitted = true;
        invalidate("map");
      } else {
        this.hoverAt(e.offsetX, e.offsetY);
      }
    });
    this.canvas.addEventListener("pointerup", (e) => {
      if (drag && !drag.moved) { const t = this.pick(e.offsetX, e.offsetY); if (t) location.hash = "#/truck/" + encodeURIComponent(t.id); }
      drag = null;
    });
    this.canvas.addEventListener("pointerleave", () => { this.hover = null; $("#tip").hidden = true; });
    this.canvas.addEventListener("wheel", (e) => { e.preventDefault(); this.zoomAt(e.offsetX, e.offsetY, e.deltaY < 0 ? 0.5 : -0.5); }, { passive: false });
    $("#fit").onclick = () => { this.fit(); invalidate("map"); };
    $("#zin").onclick = () => this.zoomAt(this.w / 2, this.h / 2, 1);
    $("#zout").onclick = () => this.zoomAt(this.w / 2, this.h / 2, -1);
  },
  resize() {
    const r = this.canvas.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.w = r.width; this.h = r.height;
    this.canvas.width = Math.round(r.width * this.dpr); this.canvas.height = Math.round(r.height * this.dpr);
  },
  scale() { return 256 * Math.pow(2, this.z); },
  project(lat, lon) { // to world [0,1]
    const s = Math.sin(Math.max(-85, Math.min(85, lat)) * Math.PI / 180);
    return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
  },
  unproject(x, y) {
    const lon = x * 360 - 180;
    const n = Math.PI - 2 * Math.PI * y;
    return [180 / Math.PI * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n))), lon];
  },
  toScreen(wx, wy) { const s = this.scale(); return [(wx - this.cx) * s + this.w / 2, (wy - this.cy) * s + this.h / 2]; },
  zoomAt(px, py, dz) {
    const s = this.scale();
    const wx = this.cx + (px - this.w / 2) / s, wy = this.cy + (py - this.h / 2) / s;
    this.z = Math.max(1, Math.min(18, this.z + dz));
    const s2 = this.scale();
    this.cx = wx - (px - this.w / 2) / s2; this.cy = wy - (py - this.h / 2) / s2; this.fitted = true;
    invalidate("map");
  },
  fit() {
    let x0 = 1, x1 = 0, y0 = 1, y1 = 0, n = 0;
    for (const t of S.trucks.values()) {
      if (t.lat === undefined || t.lon === undefined) continue;
      const [x, y] = this.project(t.lat, t.lon);
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); n++;
    }
    if (!n || !this.w) return false;
    this.cx = (x0 + x1) / 2; this.cy = (y0 + y1) / 2;
    const span = Math.max(x1 - x0, (y1 - y0) * this.w / this.h, 0.0004);
    this.z = Math.max(1, Math.min(16, Math.log2((this.w * 0.8) / (span * 256))));
    return true;
  },
  draw() {
    if (!this.ctx) return;
    if (!this.w) this.resize();
    if (!this.fitted && this.fit()) this.fitted = true;
    const c = this.ctx, s = this.scale();
    c.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    c.fillStyle = "#eef2f5"; c.fillRect(0, 0, this.w, this.h);
    if (S.cfg.tile_url) this.drawTiles(); else this.drawGraticule();
    // trucks: offline first, critical last (on top)
    const order = { offline: 0, normal: 1, warning: 2, critical: 3 };
    const list = [];
    for (const t of S.trucks.values()) {
      if (t.lat === undefined || t.lon === undefined) continue;
      const [wx, wy] = this.project(t.lat, t.lon);
      const [x, y] = [(wx - this.cx) * s + this.w / 2, (wy - this.cy) * s + this.h / 2];
      if (x < -10 || y < -10 || x > this.w + 10 || y > this.h + 10) continue;
      list.push([order[status(t)] ?? 1, x, y, t]);
    }
    list.sort((a, b) => a[0] - b[0]);
    const r = list.length > 300 ? 4 : 6;
    for (const [, x, y, t] of list) {
      const st = status(t);
      c.beginPath(); c.arc(x, y, st === "critical" ? r + 2 : r, 0, 2 * Math.PI);
      c.fillStyle = COLORS[st]; c.fill();
      c.lineWidth = 1.5; c.strokeStyle = "#fff"; c.stroke();
      if (st === "critical") { c.beginPath(); c.arc(x, y, r + 7, 0, 2 * Math.PI); c.strokeStyle = "rgba(215,38,61,.45)"; c.lineWidth = 3; c.stroke(); }
    }
    if (list.length <= 40) { // labels when few
      c.font = "11px system-ui, sans-serif"; c.fillStyle = "#1d2b36";
      for (const [, x, y, t] of list) c.fillText(t.id, x + r + 4, y + 4);
    }
    this.drawScale();
    if (list.length && !S.marks.firstDraw) S.marks.firstDraw = performance.now();
    this.drawn = list.length;
    this.canvas.dataset.drawn = list.length;
  },
  drawScale() { // a scale bar, bottom left
    const c = this.ctx, lat = this.unproject(this.cx, this.cy)[0];
    const mpp = 40075016.686 * Math.cos(lat * Math.PI / 180) / this.scale();
    let m = Math.pow(10, Math.floor(Math.log10(mpp * 120)));
    for (const k of [5, 2, 1]) if (k * m / mpp <= 120) { m *= k; break; }
    const px = m / mpp, x = 14, y = this.h - 26;
    c.fillStyle = "rgba(255,255,255,.8)"; c.fillRect(x - 4, y - 14, px + 8, 20);
    c.strokeStyle = "#1d2b36"; c.lineWidth = 1.5;
    c.beginPath(); c.moveTo(x, y - 4); c.lineTo(x, y); c.lineTo(x + px, y); c.lineTo(x + px, y - 4); c.stroke();
    c.fillStyle = "#1d2b36"; c.font = "10px system-ui, sans-serif";
    c.fillText(m >= 1000 ? m / 1000 + " km" : m + " m", x + 3, y - 4);
  },
  // keepOut returns the canvas-relative boxes labels must not be drawn
  // under: the attribution, the zoom buttons and the scale bar.
  keepOut() {
    const cr = this.canvas.getBoundingClientRect(), boxes = [[6, this.h - 44, 150, 30]];
    for (const el of [$("#attrib"), $(".mapctl")]) {
      const r = el && el.getBoundingClientRect();
      if (r && r.width) boxes.push([r.left - cr.left - 3, r.top - cr.top - 3, r.width + 6, r.height + 6]);
    }
    return boxes;
  },
  label(text, x, y, boxes) { // fillText at (x, y) baseline unless it would be covered
    const w = this.ctx.measureText(text).width, top = y - 10;
    for (const [bx, by, bw, bh] of boxes) if (x < bx + bw && x + w > bx && top < by + bh && y + 2 > by) return;
    this.ctx.fillText(text, x, y);
  },
  drawGraticule() {
    const c = this.ctx;
    const [lat0, lon0] = this.unproject(this.cx - this.w / 2 / this.scale(), this.cy + this.h / 2 / this.scale());
    const [lat1, lon1] = this.unproject(this.cx + this.w / 2 / this.scale(), this.cy - this.h / 2 / this.scale());
    const span = Math.max(lon1 - lon0, 1e-6);
    const steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30];
    const step = steps.find((v) => span / v <= 8) || 30;
    const dec = step >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(step)));
    // The attribution first: the labels keep clear of it.
    $("#attrib").textContent = S.cfg.tile_url ? S.cfg.tile_attribution || "" : "no map tiles · graticule " + step + "°";
    const boxes = this.keepOut();
    c.strokeStyle = "#d3dbe2"; c.lineWidth = 1; c.fillStyle = "#7b8a97"; c.font = "10px system-ui, sans-serif";
    c.beginPath();
    for (let lon = Math.ceil(lon0 / step) * step; lon <= lon1; lon += step) {
      const [x] = this.toScreen(this.project(0, lon)[0], 0);
      c.moveTo(Math.round(x) + 0.5, 0); c.lineTo(Math.round(x) + 0.5, this.h);
      this.label(lon.toFixed(dec) + "°", x + 3, this.h - 4, boxes);
    }
    for (let lat = Math.ceil(lat0 / step) * step; lat <= lat1; lat += step) {
      const [, y] = this.toScreen(0, this.project(lat, 0)[1]);
      c.moveTo(0, Math.round(y) + 0.5); c.lineTo(this.w, Math.round(y) + 0.5);
      this.label(lat.toFixed(dec) + "°", 3, y - 3, boxes);
    }
    c.stroke();
  },
  drawTiles() {
    const c = this.ctx, z = Math.max(0, Math.min(19, Math.round(this.z))), n = Math.pow(2, z);
    const ts = this.scale() / n; // tile size on screen
    const x0 = Math.floor((this.cx - this.w / 2 / this.scale()) * n), x1 = Math.floor((this.cx + this.w / 2 / this.scale()) * n);
    const y0 = Math.max(0, Math.floor((this.cy - this.h / 2 / this.scale()) * n)), y1 = Math.min(n - 1, Math.floor((this.cy + this.h / 2 / this.scale()) * n));
    let missing = false, drawn = 0;
    for (let x = x0; x <= x1; x++) for (let y = y0; y <= y1; y++) {
      const xx = ((x % n) + n) % n, key = z + "/" + xx + "/" + y;
      let img = this.tiles.get(key);
      if (!img) {
        img = new Image();
        img.onload = () => invalidate("map");
        img.onerror = () => { img.failed = true; };
        img.src = S.cfg.tile_url.replace("{z}", z).replace("{x}", xx).replace("{y}", y).replace("{s}", "abc"[(xx + y) % 3]);
        this.tiles.set(key, img);
        if (this.tiles.size > 600) this.tiles.delete(this.tiles.keys().next().value);
      }
      const [sx, sy] = this.toScreen(x / n, y / n);
      if (img.complete && !img.failed && img.naturalWidth) { c.drawImage(img, sx, sy, ts + 0.5, ts + 0.5); drawn++; } else missing = true;
    }
    this.canvas.dataset.tiles = drawn;
    if (missing) this.drawGraticule();
    $("#attrib").textContent = S.cfg.tile_attribution || "";
  },
  pick(px, py) {
    let best = null, bd = 12 * 12;
    for (const t of S.trucks.values()) {
      if (t.lat === undefined) continue;
      const [x, y] = this.toScreen(...this.project(t.lat, t.lon));
      const d = (x - px) ** 2 + (y - py) ** 2;
      if (d < bd) { bd = d; best = t; }
    }
    return best;
  },
  hoverAt(px, py) {
    const t = this.pick(px, py), tip = $("#tip");
    if (!t) { tip.hidden = true; this.canvas.classList.remove("pointer"); return; }
    this.canvas.classList.add("pointer");
    tip.hidden = false;
    tip.innerHTML = `<b>${esc(t.id)}</b> <span class="badge ${status(t)}">${status(t)}</span><br>engine ${fmt(t.coolant_temp)} °C · cargo ${fmt(t.cargo_temp)} °C · ${fmt(t.speed, 0)} km/h<br><small>seen ${ago(t.last_seen)}</small>`;
    tip.style.left = Math.min(px + 14, this.w - 270) + "px"; tip.style.top = py + 14 + "px";
  },
};

// ---- fleet list: sorted, filtered, virtual ----
const ROW_H = 28;
const pool = [];
function sortValue(t, key) {
  switch (key) {
    case "status": return { offline: 0, normal: 1, warning: 2, critical: 3 }[status(t)];
    case "open": return (S.openByTruck.get(t.id) || { n: 0 }).n;
    case "last_seen": return isZero(t.last_seen) ? 0 : Date.parse(t.last_seen);
    case "id": return t.id;
    default: return t[key] ?? -Infinity;
  }
}
const collator = new Intl.Collator(undefined, { numeric: true });
function computeRows() {
  const f = S.filter.toLowerCase(), st = S.status, { key, dir } = S.sort;
  const keyed = []; // [sort value, truck]: each value computed once
  for (const t of S.trucks.values()) {
    if (f && !t.id.toLowerCase().includes(f)) continue;
    if (st && status(t) !== st) continue;
    keyed.push([sortValue(t, key), t]);
  }
  const str = key === "id";
  keyed.sort((a, b) => {
    const c = str ? collator.compare(a[0], b[0]) : a[0] - b[0];
    return c ? c * dir : collator.compare(a[1].id, b[1].id);
  });
  S.rows = keyed.map((k) => k[1]);
}
function renderList() {
  computeRows();
  const list = $("#list"), rows = S.rows;
  $("#listspacer").style.height = rows.length * ROW_H + "px";
  $("#count").textContent = rows.length === S.trucks.size ? `(${rows.length})` : `(${rows.length} of ${S.trucks.size})`;
  const first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - 2);
  const need = Math.min(rows.length - first, Math.ceil(list.clientHeight / ROW_H) + 5);
  while (pool.length < need) {
    const el = document.createElement("a");
    el.className = "grid row";
    el.innerHTML = "<span></span><span><i class=\"dot\"></i><em></em></span><span></span><span class=\"num\"></span><span class=\"num\"></span><span class=\"num\"></span><span class=\"num\"></span>";
    list.appendChild(el);
    pool.push({ el, cells: [...el.children], last: [] });
  }
  for (let i = 0; i < pool.length; i++) {
    const p = pool[i], t = rows[first + i];
    if (i >= need || !t) { p.el.hidden = true; continue; }
    p.el.hidden = false;
    p.el.style.transform = `translateY(${(first + i) * ROW_H}px)`;
    const st = status(t), o = S.openByTruck.get(t.id);
    const vals = [t.id, st, ago(t.last_seen), fmt(t.coolant_temp), fmt(t.cargo_temp), fmt(t.speed, 0), o ? String(o.n) : ""];
    for (let c = 0; c < vals.length; c++) {
      if (p.last[c] === vals[c]) continue;
      p.last[c] = vals[c];
      if (c === 1) { p.cells[1].lastChild.textContent = st; p.cells[1].firstChild.className = "dot " + st; } else p.cells[c].textContent = vals[c];
    }
    const href = "#/truck/" + encodeURIComponent(t.id);
    if (p.el.getAttribute("href") !== href) p.el.setAttribute("href", href);
    p.el.className = "grid row " + st;
  }
}
function renderCounts() {
  const n = { normal: 0, warning: 0, critical: 0, offline: 0 };
  for (const t of S.trucks.values()) n[status(t)]++;
  for (const k in n) $("#n-" + k).textContent = n[k];
  document.title = (n.critical ? `(${n.critical} critical) ` : "") + "tankguard fleet console";
}

// ---- incident feed ----
const expanded = new Set();
function sortedIncidents(truck) {
  const show = $("#showresolved").checked || truck;
  const now = Date.now();
  return [...S.incidents.values()].filter((i) => (truck ? i.truck === truck : true) && (show || i.state !== "resolved"))
    .sort((a, b) => {
      const sa = a.snooze && Date.parse(a.snooze.until) > now ? 1 : 0, sb = b.snooze && Date.parse(b.snooze.until) > now ? 1 : 0;
      return (STATE_RANK[a.state] - STATE_RANK[b.state]) || (sa - sb) || ((SEV_RANK[b.severity] || 0) - (SEV_RANK[a.severity] || 0)) || (a.id < b.id ? 1 : -1);
    }).slice(0, 200);
}
function incidentHTML(i, withTruck = true) {
  const can = S.me && (S.me.role === "operator" || S.me.role === "admin");
  const snoozed = i.snooze && Date.parse(i.snooze.until) > Date.now();
  const srcs = Object.keys(i.sources || {}).sort().map((s) => `<span class="src">${esc(s)}</span>`).join("");
  const who = [];
  // Every acknowledgement, as made: who, when, and the severity acknowledged.
  const acks = i.acks || [];
  for (const a of acks) who.push(`acknowledged by <b>${esc(ackWho(a))}</b> at ${clock(a.at)} (${esc(a.severity)})`);
  if (!acks.length && i.acked_by) who.push(`acknowledged by <b>${esc(ackWho({ by: i.acked_by, origin: i.acked_from }))}</b> at ${clock(i.acked_at)}`);
  // Still reported by a source: the server refuses to resolve it.
  const active = Object.values(i.sources || {}).filter((s) => !s.cleared).length > 0;
  const fleetAcked = acks.some((a) => a.origin === "fleet" && (SEV_RANK[a.severity] || 0) >= (SEV_RANK[i.severity] || 0));
  if (i.resolved_by) who.push(`resolved by <b>${esc(i.resolved_by)}</b> at ${clock(i.resolved_at)}`);
  else if (i.resolved_at) who.push(`resolved at ${clock(i.resolved_at)}`);
  if (snoozed) who.push(`snoozed by <b>${esc(i.snooze.by)}</b> until ${clock(i.snooze.until)}`);
  let btns = "";
  if (can && i.state !== "resolved") {
    if (!fleetAcked) btns += `<button class="act ack" data-act="ack" data-id="${esc(i.id)}">Acknowledge</button>`;
    if (active) btns += `<span class="still" title="an incident resolves by itself when every source reports its condition cleared">still active: resolves by itself when it clears</span>`;
    else btns += `<button class="act" data-act="resolve" data-id="${esc(i.id)}">Resolve</button>`;
    if (!snoozed) btns += `<button class="act ghost" data-act="snooze" data-id="${esc(i.id)}" title="hide its alarm for 30 minutes">Snooze 30 min</button>`;
  }
  const notes = (i.notifications || []).map((d) => `<tr><td>${clock(d.at)}</td><td>${esc(d.event)}</td><td>${esc(d.channel)}</td><td>${d.attempts}</td><td class="${d.result === "ok" ? "ok" : "bad"}">${esc(d.result)}</td></tr>`).join("");
  const hist = (i.history || []).map((h) => `<tr><td>${clock(h.at)}</td><td>${esc(h.type)}</td><td>${esc(h.source || "")}</td><td>${esc(h.by || "")}</td><td>${esc(h.detail || "")}</td></tr>`).join("");
  return {
    cls: `inc ${i.state} ${i.severity}${snoozed ? " snoozed" : ""}`,
    main: `<div class="l1"><span class="badge ${esc(i.severity)}">${esc(i.severity)}</span>${withTruck ? ` <a href="#/truck/${encodeURIComponent(i.truck)}"><b>${esc(i.truck)}</b></a>` : ""}
 ${esc((i.signal || "").replace("_temp", ""))} ${esc(i.kind)}${i.peak && i.peak !== i.severity ? ` <span class="peak">(was ${esc(i.peak)})</span>` : ""} <span class="state">${esc(i.state)}</span> ${srcs}</div>
<div class="l2">since ${clock(i.start)}${who.length ? " · " + who.join(" · ") : ""}</div>
${btns ? `<div class="btns">${btns}</div>` : ""}`,
    details: `<summary>history · ${(i.notifications || []).length} notifications</summary>
<table><thead><tr><th>time</th><th>event</th><th>source</th><th>by</th><th>detail</th></tr></thead><tbody>${hist}</tbody></table>
${notes ? `<table><thead><tr><th>time</th><th>notified</th><th>channel</th><th>tries</th><th>result</th></tr></thead><tbody>${notes}</tbody></table>` : "<p class=\"muted\">no notifications sent</p>"}`,
  };
}
// ackWho names who made acknowledgement a, and where.
function ackWho(a) { return a.origin === "driver" ? "driver (cab)" : a.by + " (console)"; }
// renderInto shows incidents in list ol, keyed by id: an incident's
// element is reused and only the part that changed is rewritten, so a
// button does not vanish under the pointer when a notification is logged.
function renderInto(ol, l, withTruck, empty) {
  const cache = ol._items || (ol._items = new Map());
  const keep = new Set();
  let prev = null;
  for (const i of l) {
    keep.add(i.id);
    const h = incidentHTML(i, withTruck);
    let it = cache.get(i.id);
    if (!it) {
      const li = document.createElement("li");
      li.dataset.incident = i.id;
      const main = document.createElement("div"), det = document.createElement("details");
      det.dataset.id = i.id;
      det.open = expanded.has(i.id);
      li.append(main, det);
      it = { li, main, det, h: {} };
      cache.set(i.id, it);
    }
    if (it.h.cls !== h.cls) it.li.className = h.cls;
    if (it.h.main !== h.main) it.main.innerHTML = h.main;
    if (it.h.details !== h.details) it.det.innerHTML = h.details;
    it.h = h;
    const want = prev ? prev.nextSibling : ol.firstChild;
    if (want !== it.li) ol.insertBefore(it.li, want);
    prev = it.li;
  }
  for (const [id, it] of cache) if (!keep.has(id)) { it.li.remove(); cache.delete(id); }
  let e = ol.querySelector(":scope > li.muted");
  if (!l.length && !e) { e = document.createElement("li"); e.className = "muted"; e.textContent = empty; ol.appendChild(e); }
  if (l.length && e) e.remove();
}
function renderFeed() {
  const l = sortedIncidents();
  const open = [...S.incidents.values()].filter((i) => i.state !== "resolved").length;
  $("#icount").textContent = `(${open} open)`;
  renderInto($("#feed"), l, true, "No open incidents.");
  const now = Date.now();
  for (const i of l) if (!S.shownAt[i.id]) S.shownAt[i.id] = now;
}
document.addEventListener("toggle", (e) => {
  const d = e.target;
  if (d.tagName !== "DETAILS" || !d.dataset.id) return;
  if (d.open) expanded.add(d.dataset.id); else expanded.delete(d.dataset.id);
}, true);
document.addEventListener("click", async (e) => {
  const b = e.target.closest("button[data-act]");
  if (!b) return;
  b.disabled = true;
  const body = b.dataset.act === "snooze" ? { minutes: 30 } : {};
  try {
    const r = await api(`/api/incidents/${encodeURIComponent(b.dataset.id)}/${b.dataset.act}`, { method: "POST", body: JSON.stringify(body) });
    if (r.ok) { const i = await r.json(); S.incidents.set(i.id, i); recountOpen(); invalidate("feed", "list", "map", "counts", "truck"); }
    else { flash(await r.text()); b.disabled = false; }
  } catch (x) { flash(x.message); b.disabled = false; }
});
function flash(msg) {
  let f = $("#flash");
  if (!f) { f = document.createElement("div"); f.id = "flash"; document.body.appendChild(f); }
  f.textContent = msg; f.hidden = false;
  clearTimeout(flash.t); flash.t = setTimeout(() => { f.hidden = true; }, 5000);
}

// ---- truck page ----
// range: the chart window in seconds; 0 fits it to the data (the default:
// a truck heard from for ten minutes fills the chart, not a sliver of 1 h).
const T = { id: null, hist: null, live: [], range: 0, limits: {}, loading: null };
// fitRange returns a window from the earliest point with a value to now,
// 2 min to 6 h.
function fitRange(...sets) {
  let first = Infinity;
  for (const pts of sets) for (const p of pts) if (p.v !== null && p.v !== undefined) { first = Math.min(first, p.t); break; }
  if (first === Infinity) return 900;
  return Math.max(120, Math.min(21600, Math.ceil((Date.now() / 1000 - first) * 1.05)));
}
async function loadTruck(id) {
  T.id = id; T.live = []; T.hist = null;
  const since = Math.floor(Date.now() / 1000) - 6 * 3600;
  const r = await api(`/api/trucks/${encodeURIComponent(id)}?since=${since}`);
  if (!r.ok) { $("#t-id").textContent = id + " (unknown truck)"; return; }
  const d = await r.json();
  if (T.id !== id) return;
  T.hist = d.history; T.limits = d.limits || {};
  S.trucks.set(d.truck.id, d.truck);
  invalidate("truck");
}
function liveAppend(t) {
  if (t.id !== T.id || isZero(t.data_time)) return;
  const ts = Date.parse(t.data_time) / 1000;
  const last = T.live[T.live.length - 1];
  if (last && last.t >= ts) return;
  T.live.push({ t: ts, coolant: t.coolant_temp, cargo: t.cargo_temp, speed: t.speed, cb: t.coolant_band, gb: t.cargo_band });
  if (T.live.length > 20000) T.live.splice(0, 5000);
}
function series(key, bandKey) { // [{t, v, lo, hi}] from history then live
  const out = [];
  const h = T.hist;
  const liveFrom = T.live.length ? T.live[0].t : Infinity;
  if (h) for (let i = 0; i < h.t.length; i++) {
    if (h.t[i] + h.step > liveFrom) break;
    out.push({ t: h.t[i] + h.step / 2, v: h[key][i], lo: bandKey ? h[bandKey + "_lo"][i] : null, hi: bandKey ? h[bandKey + "_hi"][i] : null });
  }
  const lk = { coolant: "cb", cargo: "gb" }[key];
  for (const p of T.live) out.push({ t: p.t, v: p[key] ?? null, lo: lk && p[lk] ? p[lk][0] : null, hi: lk && p[lk] ? p[lk][1] : null });
  return out;
}
function drawChart(canvas, pts, opt) {
  const r = canvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
  if (!r.width) return;
  if (canvas.width !== Math.round(r.width * dpr)) { canvas.width = Math.round(r.width * dpr); canvas.height = Math.round(r.height * dpr); }
  const c = canvas.getContext("2d"), W = r.width, H = r.height, L = 44, R = 10, Tp = 10, B = 22;
  c.setTransform(dpr, 0, 0, dpr, 0, 0);
  c.clearRect(0, 0, W, H);
  const range = opt.range, now = Date.now() / 1000, t0 = now - range;
  const vis = pts.filter((p) => p.t >= t0 - 60);
  let lo = Infinity, hi = -Infinity;
  for (const p of vis) {
    for (const v of [p.v, p.lo, p.hi]) if (v !== null && v !== undefined && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  for (const v of opt.lines || []) if (v.v !== null && v.v !== undefined && (hi === -Infinity || v.v < hi + (hi - lo + 10) * 1.5)) { lo = Math.min(lo, v.v); hi = Math.max(hi, v.v); }
  if (lo === Infinity) { lo = 0; hi = 1; }
  if (opt.zero) lo = Math.min(lo, 0);
  const pad = Math.max((hi - lo) * 0.08, 1); lo -= pad; hi += pad;
  const X = (t) => L + ((t - t0) / (now - t0)) * (W - L - R), Y = (v) => Tp + (1 - (v - lo) / (hi - lo)) * (H - Tp - B);
  // grid and axes
  c.font = "10px system-ui, sans-serif"; c.fillStyle = "#6b7a86"; c.strokeStyle = "#e3e8ec"; c.lineWidth = 1;
  const ystep = [1, 2, 5, 10, 20, 25, 50, 100].find((s) => (hi - lo) / s <= 6) || 100;
  c.beginPath();
  for (let v = Math.ceil(lo / ystep) * ystep; v <= hi; v += ystep) { const y = Math.round(Y(v)) + 0.5; c.moveTo(L, y); c.lineTo(W - R, y); c.fillText(String(v), 4, y + 3); }
  const tstep = [30, 60, 120, 300, 600, 900, 1800, 3600, 7200].find((s) => range / s <= 8) || 7200;
  for (let t = Math.ceil(t0 / tstep) * tstep; t <= now; t += tstep) {
    const x = Math.round(X(t)) + 0.5; c.moveTo(x, Tp); c.lineTo(x, H - B);
    c.fillText(new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false }), x - 14, H - 6);
  }
  c.stroke();
  // normal band
  if (opt.band) {
    c.fillStyle = "rgba(46,158,68,.16)";
    let run = [];
    const flush = () => {
      if (run.length > 1) {
        c.beginPath();
        run.forEach((p, i) => (i ? c.lineTo(X(p.t), Y(p.hi)) : c.moveTo(X(p.t), Y(p.hi))));
        for (let i = run.length - 1; i >= 0; i--) c.lineTo(X(run[i].t), Y(run[i].lo));
        c.closePath(); c.fill();
      }
      run = [];
    };
    for (const p of vis) { if (p.lo !== null && p.hi !== null && p.lo !== undefined) run.push(p); else flush(); }
    flush();
  }
  // limits
  for (const l of opt.lines || []) {
    if (l.v === null || l.v === undefined || l.v < lo || l.v > hi) continue;
    c.strokeStyle = l.color; c.setLineDash([5, 4]); c.beginPath(); c.moveTo(L, Y(l.v)); c.lineTo(W - R, Y(l.v)); c.stroke(); c.setLineDash([]);
    c.fillStyle = l.color; c.fillText(l.label, W - R - 70, Y(l.v) - 3);
  }
  // value line (breaks on gaps longer than 3 steps)
  c.strokeStyle = opt.color; c.lineWidth = 1.8; c.beginPath();
  let prev = null;
  for (const p of vis) {
    if (p.v === null || p.v === undefined) { prev = null; continue; }
    const gap = prev && p.t - prev.t > Math.max(90, (T.hist ? T.hist.step : 20) * 3);
    if (!prev || gap) c.moveTo(X(p.t), Y(p.v)); else c.lineTo(X(p.t), Y(p.v));
    prev = p;
  }
  c.stroke();
  canvas.dataset.points = vis.length;
  // How much of the plot's width the data spans (tests check the fit).
  const ts = vis.filter((p) => p.v !== null && p.v !== undefined).map((p) => p.t);
  canvas.dataset.span = ts.length > 1 ? ((X(Math.max(...ts)) - X(Math.max(t0, Math.min(...ts)))) / (W - L - R)).toFixed(3) : "0";
}
// The ECUs' active trouble codes (J1939 DM1) from the truck's latest DTC
// report; the section is hidden while there are none.
function renderFaults(t) {
  const faults = t.faults || [];
  $("#t-faults").hidden = faults.length === 0;
  const lamp = $("#t-faultlamp");
  lamp.textContent = t.fault_lamp === "red_stop" ? "red stop lamp" : t.fault_lamp === "amber_warning" ? "amber warning lamp" : "";
  lamp.className = "badge " + (t.fault_lamp === "red_stop" ? "critical" : t.fault_lamp ? "warning" : "");
  $("#t-faultlist").innerHTML = faults.map((f) => `<li data-spn="${f.spn}" data-fmi="${f.fmi}"><b>${esc(f.name)}</b>: ${esc(f.failure)} <span class="muted">SPN ${f.spn} / FMI ${f.fmi}${f.oc < 127 ? `, ${f.oc}×` : ""}${f.source ? `, ECU ${f.source}` : ""}</span></li>`).join("");
}
function renderTruck(full) {
  const t = S.trucks.get(T.id);
  if (t) {
    const st = status(t);
    $("#t-id").textContent = t.id;
    const b = $("#t-status"); b.textContent = st; b.className = "badge " + st;
    $("#t-coolant").textContent = fmt(t.coolant_temp); $("#t-cargo").textContent = fmt(t.cargo_temp); $("#t-speed").textContent = fmt(t.speed, 0);
    $("#t-pos").textContent = t.lat !== undefined ? `${fmt(t.lat, 4)}, ${fmt(t.lon, 4)}` : "–";
    $("#t-seen").textContent = ago(t.last_seen);
    renderFaults(t);
  }
  const lim = (sig) => T.limits[sig] || {};
  const cool = series("coolant", "coolant"), cargo = series("cargo", "cargo"), speed = series("speed");
  const range = T.range || fitRange(cool, cargo, speed);
  drawChart($("#c-coolant"), cool, { range, color: "#1c5d99", band: true, lines: [
    { v: lim("coolant_temp").warn_high, color: "#d08700", label: "warning" }, { v: lim("coolant_temp").crit_high, color: "#d7263d", label: "critical" }] });
  drawChart($("#c-cargo"), cargo, { range, color: "#7a3e9d", band: true, lines: [
    { v: lim("cargo_temp").warn_high, color: "#d08700", label: "warning" }, { v: lim("cargo_temp").crit_high, color: "#d7263d", label: "critical" }] });
  drawChart($("#c-speed"), speed, { range, color: "#2b7a78", zero: true });
  const incs = sortedIncidents(T.id);
  renderInto($("#t-feed"), incs, false, "No incidents.");
  // Every acknowledgement: who, when (its own time: a driver's may reach
  // the cloud much later, after a coverage gap) and what was acknowledged
  // then, not what the incident became.
  const acks = [];
  for (const i of incs) for (const a of i.acks || []) acks.push({ ...a, inc: i });
  acks.sort((a, b) => (a.at < b.at ? 1 : -1));
  $("#t-acks").innerHTML = acks.length ? acks.map((a) => `<tr data-severity="${esc(a.severity)}"><td>${new Date(a.at).toLocaleString([], { hour12: false })}</td><td>${esc(ackWho(a))}</td><td>${esc(a.inc.signal || "")} ${esc(a.kind)}, ${esc(a.severity)}</td></tr>`).join("")
    : `<tr><td colspan="3" class="muted">No acknowledgements yet.</td></tr>`;
}
document.getElementById("ranges").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-range]");
  if (!b) return;
  T.range = Number(b.dataset.range);
  for (const x of document.querySelectorAll("#ranges button")) x.classList.toggle("on", x === b);
  invalidate("truck");
});

// ---- routing ----
function route() {
  const m = location.hash.match(/^#\/truck\/(.+)$/);
  if (m) {
    S.route = { view: "truck", id: decodeURIComponent(m[1]) };
    $("#fleet-view").hidden = true; $("#truck-view").hidden = false;
    loadTruck(S.route.id);
  } else {
    S.route = { view: "fleet" }; T.id = null;
    $("#fleet-view").hidden = false; $("#truck-view").hidden = true;
    map.resize();
    invalidate("map", "list", "feed");
  }
  document.body.dataset.view = S.route.view;
}
window.addEventListener("hashchange", route);

// ---- live data ----
async function snapshot() {
  const [ts, is] = await Promise.all([api("/api/trucks").then((r) => r.json()), api("/api/incidents").then((r) => r.json())]);
  for (const t of ts) { const have = S.trucks.get(t.id); if (!have || have.last_seen <= t.last_seen) S.trucks.set(t.id, t); }
  for (const i of is || []) { // keep a newer copy that came live
    const have = S.incidents.get(i.id);
    if (!have || (have.history || []).length <= (i.history || []).length) S.incidents.set(i.id, i);
  }
  recountOpen();
  if (!S.firstData && ts.length) { S.firstData = performance.now(); document.body.dataset.firstData = Math.round(S.firstData); }
  invalidate("map", "list", "feed", "counts", "truck");
}
function connect() {
  const es = new EventSource("/api/events");
  let first = true;
  es.onopen = () => {
    $("#conn").textContent = "live"; $("#conn").className = "conn ok"; document.body.dataset.conn = "up";
    if (!first) snapshot().catch(() => {}); // after a reconnect: catch up on what was missed
    first = false;
  };
  es.onerror = () => {
    $("#conn").textContent = "reconnecting…"; $("#conn").className = "conn bad"; document.body.dataset.conn = "down";
    fetch("/api/me", { credentials: "same-origin" }).then((r) => { if (r.status === 401) { es.close(); toLogin(); } }).catch(() => {});
  };
  es.addEventListener("auth", () => { es.close(); toLogin(); });
  es.addEventListener("trucks", (e) => {
    S.events++;
    for (const t of JSON.parse(e.data)) { S.trucks.set(t.id, t); if (t.id === T.id) liveAppend(t); }
    if (!S.firstData && S.trucks.size) { S.firstData = performance.now(); document.body.dataset.firstData = Math.round(S.firstData); }
    invalidate("map", "list", "counts", "truck");
  });
  es.addEventListener("incident", (e) => {
    const i = JSON.parse(e.data);
    S.incidents.set(i.id, i);
    recountOpen();
    invalidate("feed", "map", "list", "counts", "truck");
  });
}

async function main() {
  S.marks.start = performance.now();
  connect(); // first, so nothing between the snapshot and the stream is missed
  const [me, cfg] = await Promise.all([api("/api/me").then((r) => r.json()), api("/api/config").then((r) => r.json()), snapshot()]);
  S.me = me; S.cfg = cfg; S.marks.ready = performance.now();
  $("#me").innerHTML = `${esc(S.me.user)} <span class="role">${esc(S.me.role)}</span>`;
  document.body.dataset.role = S.me.role;
  $("#logout").onclick = async () => { await fetch("/api/logout", { method: "POST", credentials: "same-origin" }); location.replace("/login"); };
  $("#filter").addEventListener("input", (e) => { S.filter = e.target.value; $("#list").scrollTop = 0; invalidate("list"); });
  $("#statusf").addEventListener("change", (e) => { S.status = e.target.value; $("#list").scrollTop = 0; invalidate("list"); });
  $("#showresolved").addEventListener("change", () => invalidate("feed"));
  $("#list").addEventListener("scroll", () => invalidate("list"), { passive: true });
  $("#counts").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-status]");
    if (!b) return;
    S.status = S.status === b.dataset.status ? "" : b.dataset.status;
    $("#statusf").value = S.status; location.hash = "#/"; invalidate("list");
  });
  for (const h of document.querySelectorAll("#listhead [data-sort]")) {
    h.addEventListener("click", () => {
      const k = h.dataset.sort;
      S.sort = { key: k, dir: S.sort.key === k ? -S.sort.dir : (k === "id" ? 1 : -1) };
      for (const x of document.querySelectorAll("#listhead [data-sort]")) x.classList.remove("asc", "desc");
      h.classList.add(S.sort.dir > 0 ? "asc" : "desc");
      invalidate("list");
    });
  }
  document.querySelector('#listhead [data-sort="status"]').classList.add("desc");
  S.map = map;
  map.init();
  route();
  setInterval(() => invalidate("list", "truck"), 1000); // "x s ago" and moving chart window
  setInterval(() => { if (T.id) loadTruck(T.id); }, 120000);
}
main().catch((x) => { if (x.message !== "signed out") flash(x.message); });

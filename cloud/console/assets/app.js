"use strict";
// tankguard fleet console: snapshot from /api/trucks and /api/alerts, then
// live updates from /api/events (Server-Sent Events).
const trucks = new Map();
const alerts = [];
const incidents = new Map();
const $ = (s) => document.querySelector(s);
const fmt = (v, d = 1) => (v === undefined || v === null ? "–" : Number(v).toFixed(d));
const ago = (t) => {
  if (!t || t.startsWith("0001")) return "never";
  const s = Math.round((Date.now() - Date.parse(t)) / 1000);
  return s < 60 ? s + " s ago" : Math.round(s / 60) + " min ago";
};
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
let dirty = false;

function renderTrucks() {
  const rows = [];
  const dots = [];
  const list = [...trucks.values()].sort((a, b) => a.id.localeCompare(b.id));
  const pos = list.filter((t) => t.lat !== undefined && t.lon !== undefined);
  let [minLat, maxLat, minLon, maxLon] = [90, -90, 180, -180];
  for (const t of pos) {
    minLat = Math.min(minLat, t.lat); maxLat = Math.max(maxLat, t.lat);
    minLon = Math.min(minLon, t.lon); maxLon = Math.max(maxLon, t.lon);
  }
  const spanLat = Math.max(maxLat - minLat, 0.01), spanLon = Math.max(maxLon - minLon, 0.01);
  for (const t of list) {
    const cls = (t.online ? "" : "offline ") + "sev-" + t.severity;
    const open = Object.entries(t.open_alerts || {}).map(([k, v]) => k + ":" + v).join(" ");
    rows.push(`<tr class="${cls}" data-truck="${esc(t.id)}"><td>${esc(t.id)}</td><td>${t.online ? "online" : "offline"}</td>` +
      `<td>${ago(t.last_seen)}</td><td>${fmt(t.lat, 4)}, ${fmt(t.lon, 4)}</td><td>${fmt(t.coolant_temp)}</td>` +
      `<td>${fmt(t.cargo_temp)}</td><td>${fmt(t.speed)}</td><td>${esc(open)}</td></tr>`);
    if (t.lat !== undefined && t.lon !== undefined) {
      const x = 10 + ((t.lon - minLon) / spanLon) * 380, y = 230 - ((t.lat - minLat) / spanLat) * 220;
      const col = !t.online ? "#888" : t.severity === "critical" ? "#d22" : t.severity === "warning" ? "#e90" : "#2a2";
      dots.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="4" fill="${col}"><title>${esc(t.id)}</title></circle>`);
    }
  }
  $("#trucks tbody").innerHTML = rows.join("");
  $("#map").innerHTML = dots.join("");
  $("#count").textContent = "(" + list.length + ")";
}

function renderAlerts() {
  $("#alerts").innerHTML = alerts.slice(-200).reverse().map((a) =>
    `<li class="${esc(a.severity)} ${esc(a.phase)}"><span class="src">${esc(a.source)}</span> ` +
    `<b>${esc(a.truck)}</b> ${esc(a.signal)} ${esc(a.kind)} <b>${esc(a.severity)}</b> ${esc(a.phase)} ` +
    `value ${fmt(a.value)} at ${new Date(a.time).toLocaleTimeString()}</li>`).join("");
}

function renderIncidents() {
  const list = [...incidents.values()].sort((a, b) => (a.id < b.id ? 1 : -1)).slice(0, 200);
  $("#incidents").innerHTML = list.map((i) => {
    const srcs = Object.keys(i.sources || {}).sort().map((s) => `<span class="src">${esc(s)}</span>`).join(" ");
    const who = i.acked_by ? ` acked by ${esc(i.acked_by)} ${new Date(i.acked_at).toLocaleTimeString()}` : "";
    const btns = i.state === "resolved" ? "" :
      (i.state === "open" ? `<button data-act="ack" data-id="${esc(i.id)}">Acknowledge</button>` : "") +
      `<button data-act="resolve" data-id="${esc(i.id)}">Resolve</button>`;
    const log = (i.notifications || []).slice(-3).map((d) => `${esc(d.event)}→${esc(d.channel.split(" ")[0])}:${esc(d.result)}`).join(", ");
    return `<li class="${esc(i.state)} ${esc(i.severity)}" data-incident="${esc(i.id)}"><b>${esc(i.truck)}</b> ${esc(i.signal || "")} ${esc(i.kind)} ` +
      `<b>${esc(i.severity)}</b> <i>${esc(i.state)}</i> ${srcs}${who} ${btns}<br><small>${esc(i.id)} since ${new Date(i.start).toLocaleTimeString()} ${log}</small></li>`;
  }).join("");
}

document.addEventListener("click", async (e) => {
  const b = e.target.closest("button[data-act]");
  if (!b) return;
  const r = await fetch(`api/incidents/${encodeURIComponent(b.dataset.id)}/${b.dataset.act}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ by: $("#who").value }),
  });
  if (r.ok) { const i = await r.json(); incidents.set(i.id, i); renderIncidents(); } else { alert(await r.text()); }
});

function schedule() {
  if (dirty) return;
  dirty = true;
  requestAnimationFrame(() => { dirty = false; renderTrucks(); });
}

async function snapshot() {
  const [ts, as, is] = await Promise.all([fetch("api/trucks").then((r) => r.json()), fetch("api/alerts").then((r) => r.json()),
    fetch("api/incidents").then((r) => r.json())]);
  incidents.clear();
  for (const i of is || []) incidents.set(i.id, i);
  renderIncidents();
  trucks.clear();
  for (const t of ts) trucks.set(t.id, t);
  alerts.length = 0;
  alerts.push(...as);
  renderTrucks();
  renderAlerts();
}

function connect() {
  const es = new EventSource("api/events");
  es.onopen = () => { $("#conn").textContent = "live"; $("#conn").className = "ok"; snapshot(); };
  es.onerror = () => { $("#conn").textContent = "reconnecting…"; $("#conn").className = "bad"; };
  es.addEventListener("trucks", (e) => { for (const t of JSON.parse(e.data)) trucks.set(t.id, t); schedule(); });
  es.addEventListener("incident", (e) => { const i = JSON.parse(e.data); incidents.set(i.id, i); renderIncidents(); });
  es.addEventListener("alert", (e) => { alerts.push(JSON.parse(e.data)); if (alerts.length > 500) alerts.shift(); renderAlerts(); });
}

setInterval(() => { schedule(); fetch("api/stats").then((r) => r.json()).then((s) => {
  $("#stats").textContent = Object.entries(s).map(([k, v]) => k + "=" + v).join(" ");
}).catch(() => {}); }, 2000);
connect();

// The console's live parts: tiles and the alert list from /events (Server-Sent Events), and the
// SVG timelines from /api/timeline. No inline script (the page's CSP forbids it).
"use strict";

function fmtTime(t) {
  return new Date(t * 1000).toLocaleString();
}

function fillTimes(root) {
  for (const el of root.querySelectorAll(".time[data-t]")) {
    const t = parseFloat(el.dataset.t);
    el.textContent = isFinite(t) && t > 0 ? fmtTime(t) : "-";
  }
}

function svgEl(name, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function drawTimeline(svg, data) {
  const W = 600, H = 120, t0 = data.since, t1 = Math.max(data.until, t0 + 1);
  const x = (t) => ((t - t0) / (t1 - t0)) * W;
  const y = (v) => H - 4 - v * (H - 8);
  svg.replaceChildren();
  for (const [start, end, id] of data.alerts) {
    if (end < t0 || start > t1) continue;
    svg.appendChild(svgEl("rect", { x: x(start), y: 0, width: Math.max(2, x(end) - x(start)), height: H,
                                    class: "alert-span", fill: "#f5b7b1", "data-alert-id": id }));
  }
  svg.appendChild(svgEl("line", { x1: 0, x2: W, y1: y(data.threshold), y2: y(data.threshold),
                                  stroke: "#b00020", "stroke-dasharray": "4 3", class: "threshold" }));
  const series = [[1, "#1f5fbf", "confidence"], [2, "#d35400", "sas"]];
  for (const [col, color, name] of series) {
    const pts = data.frames.map((f) => `${x(f[0]).toFixed(1)},${y(f[col]).toFixed(1)}`).join(" ");
    if (pts) svg.appendChild(svgEl("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 1.5, class: name }));
  }
  svg.dataset.frames = String(data.frames.length);
}

async function refreshTimeline(svg) {
  const q = svg.dataset.since ? `since=${svg.dataset.since}&until=${svg.dataset.until}` : `minutes=${svg.dataset.minutes}`;
  const r = await fetch(`/api/timeline/${encodeURIComponent(svg.dataset.camera)}?${q}`, { credentials: "same-origin" });
  if (r.ok) drawTimeline(svg, await r.json());
}

function text(parent, tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  parent.appendChild(el);
  return el;
}

function tileFor(camera) {
  let tile = document.querySelector(`.tile[data-camera="${CSS.escape(camera.camera_id)}"]`);
  if (tile) return tile;
  document.getElementById("no-cameras")?.remove();
  tile = document.createElement("article");
  tile.className = "tile";
  tile.dataset.camera = camera.camera_id;
  const h = text(tile, "h2", camera.camera_id + " ");
  text(h, "span", "", "status");
  const img = document.createElement("img");
  img.className = "thumb";
  img.alt = `latest reconstruction of ${camera.camera_id}`;
  tile.appendChild(img);
  const dl = document.createElement("dl");
  for (const [label, cls] of [["received / scored", "fps"], ["lag p50 / p99", "lag"], ["SAS", "sas"], ["last frame", "time seen"]]) {
    text(dl, "dt", label);
    text(dl, "dd", "", cls);
  }
  tile.appendChild(dl);
  const svg = svgEl("svg", { class: "timeline", viewBox: "0 0 600 120", preserveAspectRatio: "none" });
  svg.dataset.camera = camera.camera_id;
  svg.dataset.minutes = "10";
  tile.appendChild(svg);
  document.getElementById("cameras").appendChild(tile);
  return tile;
}

function updateTile(c, at) {
  const tile = tileFor(c);
  const status = tile.querySelector(".status");
  status.textContent = c.status === "silent" ? `silent since ${fmtTime(c.last_seen)}` : c.status;
  status.className = `status status-${c.status}`;
  tile.querySelector(".fps").textContent = `${c.received_fps.toFixed(1)} / ${c.scored_fps.toFixed(1)} frames/s`;
  tile.querySelector(".lag").textContent = c.lag_p50_s === null ? "-" :
    `${Math.round(1000 * c.lag_p50_s)} / ${Math.round(1000 * c.lag_p99_s)} ms`;
  tile.querySelector(".sas").textContent = c.sas === null ? "-" : c.sas.toFixed(3);
  tile.querySelector(".seen").textContent = fmtTime(c.last_seen);
  tile.querySelector(".thumb").src = `/cameras/${encodeURIComponent(c.camera_id)}/thumbnail.jpg?t=${at}`;
}

function updateAlerts(alerts) {
  const body = document.getElementById("alert-rows");
  if (!body) return;
  body.replaceChildren();
  for (const a of alerts.slice(0, 20)) {
    const tr = document.createElement("tr");
    tr.className = `alert-row state-${a.state}`;
    tr.dataset.alertId = a.alert_id;
    const link = document.createElement("a");
    link.href = `/alerts/${encodeURIComponent(a.alert_id)}`;
    link.textContent = a.alert_id;
    tr.appendChild(document.createElement("td")).appendChild(link);
    text(tr, "td", a.camera_id);
    text(tr, "td", fmtTime(a.start_time));
    text(tr, "td", a.peak_score.toFixed(3));
    text(tr, "td", a.is_open ? "active" : "ended");
    text(tr, "td", a.state, "state");
    body.appendChild(tr);
  }
}

function startLive() {
  if (!document.querySelector("[data-live]")) return;
  const source = new EventSource("/events");
  source.addEventListener("update", (event) => {
    const data = JSON.parse(event.data);
    for (const c of data.cameras) updateTile(c, data.at);
    updateAlerts(data.alerts);
    document.body.dataset.lastUpdate = String(data.at);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  fillTimes(document);
  startLive();
  const tick = () => document.querySelectorAll("svg.timeline").forEach((svg) => refreshTimeline(svg));
  tick();
  if (document.querySelector("[data-live]")) setInterval(tick, 2000);
});

// relaygate dashboard: reads the admin API with the master key kept in sessionStorage (this tab
// only). Everything is rendered with textContent, so provider or key names cannot inject markup.
"use strict";

const STORE = "relaygate.masterKey";
const $ = (id) => document.getElementById(id);

function key() { return sessionStorage.getItem(STORE) || ""; }

function say(text, error) {
  const el = $("status");
  el.textContent = text;
  el.className = error ? "error" : "";
}

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: "Bearer " + key() }, cache: "no-store" });
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const message = body && body.error ? body.error.message : (body && body.message) || res.statusText;
    const err = new Error(path + ": " + res.status + " " + message);
    err.status = res.status;
    throw err;
  }
  return body && "success" in body ? body.data : body;
}

function cell(row, value, cls) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "-" : String(value);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(table, rows, render) {
  const body = $(table).querySelector("tbody");
  body.replaceChildren();
  for (const item of rows) {
    const tr = document.createElement("tr");
    render(tr, item);
    body.appendChild(tr);
  }
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell(tr, "none");
    td.colSpan = $(table).querySelectorAll("thead th").length;
    body.appendChild(tr);
  }
}

const num = (v, digits) => (v === null || v === undefined ? "-" : digits === undefined ? Number(v).toLocaleString() : Number(v).toFixed(digits));

async function loadProviders() {
  const [providers, health] = await Promise.all([api("/api/providers"), api("/health")]);
  const live = (health && health.backends) || {};
  fill("providers", providers, (tr, p) => {
    const h = live[p.name] || {};
    cell(tr, p.name);
    cell(tr, p.type);
    cell(tr, p.source);
    cell(tr, p.default ? "yes" : "");
    const breaker = h.breaker || "closed";
    cell(tr, breaker, breaker === "open" ? "bad" : breaker === "half_open" ? "warn" : "ok");
    let state = p.healthy === true ? "healthy" : p.healthy === false ? "unhealthy" : "unchecked";
    if (p.discovery_error) state = "discovery failed: " + p.discovery_error;
    cell(tr, state, p.healthy === false || p.discovery_error ? "bad" : p.healthy ? "ok" : "");
    cell(tr, h.latency_ms === undefined || h.latency_ms === null ? null : num(h.latency_ms, 1), "num");
    cell(tr, (h.successes || 0) + " / " + (h.failures || 0), "num");
    cell(tr, (p.models || []).length, "num");
  });
}

async function loadUsage() {
  const params = new URLSearchParams({ by: $("by").value });
  if ($("hours").value) params.set("hours", $("hours").value);
  const data = await api("/api/usage/summary?" + params);
  fill("usage", data.groups, (tr, g) => {
    cell(tr, g.group === null ? "(none)" : g.group);
    cell(tr, num(g.requests), "num");
    cell(tr, num(g.errors), g.errors ? "num bad" : "num");
    cell(tr, num(g.input_tokens), "num");
    cell(tr, num(g.output_tokens), "num");
    cell(tr, num(g.cache_read_tokens), "num");
    cell(tr, num(g.reasoning_tokens), "num");
    cell(tr, num(g.cost, 6), "num");
    cell(tr, num(g.avg_latency_ms, 1), "num");
  });
  const t = data.totals;
  const foot = $("usage").querySelector("tfoot");
  foot.replaceChildren();
  const tr = document.createElement("tr");
  cell(tr, "total" + (data.dropped_rows ? " (" + data.dropped_rows + " rows dropped)" : ""));
  for (const name of ["requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"]) cell(tr, num(t[name]), "num");
  cell(tr, num(t.cost, 6), "num");
  cell(tr, "");
  foot.appendChild(tr);
}

async function loadKeys() {
  const keys = await api("/api/keys");
  fill("keys", keys, (tr, k) => {
    cell(tr, k.name);
    cell(tr, k.id);
    cell(tr, k.rpm, "num");
    cell(tr, k.tpm, "num");
    cell(tr, k.budget === null ? null : num(k.budget, 2), "num");
    cell(tr, k.models ? k.models.join(", ") : "any");
    cell(tr, new Date(k.created * 1000).toISOString().slice(0, 16).replace("T", " "));
    cell(tr, k.revoked ? "revoked" : "active", k.revoked ? "bad" : "ok");
  });
}

async function refresh() {
  if (!key()) { say("Paste the master key to load the admin API."); return; }
  const results = await Promise.allSettled([loadProviders(), loadUsage(), loadKeys()]);
  const failed = results.filter((r) => r.status === "rejected").map((r) => r.reason);
  if (failed.some((e) => e.status === 401)) {
    say("The key was refused (401): paste the master key.", true);
  } else if (failed.length) {
    say(failed.map((e) => e.message).join(" · "), true);
  } else {
    say("Updated " + new Date().toLocaleTimeString());
  }
  document.body.dataset.loaded = String(Date.now());
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const value = $("key").value.trim();
  if (value) sessionStorage.setItem(STORE, value);
  $("key").value = "";
  refresh();
});
$("forget").addEventListener("click", () => { sessionStorage.removeItem(STORE); say("Key forgotten."); });
$("by").addEventListener("change", () => loadUsage().catch((e) => say(e.message, true)));
$("hours").addEventListener("change", () => loadUsage().catch((e) => say(e.message, true)));
fetch("/version").then((r) => r.json()).then((v) => { $("version").textContent = "v" + v.version; }).catch(() => {});

// The hash lets a script (or a test) hand the key over without typing: #key=… is moved into
// sessionStorage and removed from the address bar at once.
if (location.hash.startsWith("#key=")) {
  sessionStorage.setItem(STORE, decodeURIComponent(location.hash.slice(5)));
  history.replaceState(null, "", location.pathname);
}
refresh();
setInterval(refresh, 15000);

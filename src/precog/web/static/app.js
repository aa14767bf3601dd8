/* Precog dashboard: plain JS, no build step. Data from /api/*, live notices from /api/events (SSE).
 * Every value from the server is inserted as text (never as HTML). Money arrives as exact decimal strings
 * and is formatted with string/BigInt arithmetic; charts convert to numbers for drawing only. */
"use strict";

const TABS = ["overview", "approvals", "positions", "edges", "pnl", "methods", "alerts", "controls"];
const TOKEN_KEY = "precog.dashboard.token";
const OPERATOR_KEY = "precog.dashboard.operator";
const state = { tab: "overview", overview: null, charts: [], loading: {}, pending: {}, rendered: {}, eventSource: null };

// ------------------------------------------------------------------ DOM helpers
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function section(title, ...content) {
  return h("div", { class: "panel" }, h("h2", { text: title }), ...content);
}

function table(columns, rows, opts = {}) {
  if (!rows || rows.length === 0) return h("p", { class: "empty", text: opts.empty || "nothing to show" });
  const head = h("tr", null, columns.map((c) => h("th", { class: c.cls || "", text: c.label })));
  const body = rows.map((r) => {
    const tr = h("tr", { class: opts.rowClass ? opts.rowClass(r) : "" });
    if (opts.rowTestId) tr.dataset.testid = opts.rowTestId(r);
    for (const c of columns) {
      const v = c.value(r);
      tr.append(h("td", { class: c.cls || "" }, v === undefined || v === null ? "" : v));
    }
    return tr;
  });
  return h("div", { class: "table-wrap" },
    h("table", { "data-testid": opts.testid || null }, h("thead", null, head), h("tbody", null, body)));
}

function card(label, value, sub, cls, testid) {
  return h("div", { class: "card " + (cls || ""), "data-testid": testid || null },
    h("div", { class: "card-label", text: label }),
    h("div", { class: "card-value" }, value),
    sub ? h("div", { class: "card-sub" }, sub) : null);
}

function toast(message, kind = "info") {
  const el = h("div", { class: "toast " + kind, role: "status", text: message });
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

// ------------------------------------------------------------------ exact decimal formatting
function fixed(value, places) {
  if (value === null || value === undefined || value === "") return "";
  let s = String(value).trim();
  if (/e/i.test(s)) s = Number(s).toFixed(Math.max(places, 8));
  let neg = false;
  if (s[0] === "-" || s[0] === "+") { neg = s[0] === "-"; s = s.slice(1); }
  let [ip, fp = ""] = s.split(".");
  ip = ip || "0";
  let digits = BigInt(ip + fp);
  let scale = fp.length;
  if (scale < places) { digits *= 10n ** BigInt(places - scale); scale = places; }
  if (scale > places) {
    const div = 10n ** BigInt(scale - places);
    let q = digits / div;
    if ((digits % div) * 2n >= div) q += 1n;  // half-up, away from zero (sign applied after)
    digits = q;
  }
  let str = digits.toString().padStart(places + 1, "0");
  const intPart = str.slice(0, str.length - places).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const fracPart = places > 0 ? "." + str.slice(str.length - places) : "";
  const zero = /^[0,]*$/.test(intPart) && /^\.?0*$/.test(fracPart);
  return (neg && !zero ? "-" : "") + intPart + fracPart;
}

function money(value) {
  if (value === null || value === undefined) return "—";
  const s = fixed(value, 2);
  return s.startsWith("-") ? "-$" + s.slice(1) : "$" + s;
}

function signedMoney(value) {
  const s = money(value);
  return s !== "—" && !s.startsWith("-") && fixed(value, 2) !== "0.00" ? "+" + s : s;
}

function signCls(value) {
  if (value === null || value === undefined) return "";
  const s = fixed(value, 4);
  if (s.startsWith("-")) return "neg";
  return /[1-9]/.test(s) ? "pos" : "";
}

function moneyCell(value) {
  return h("span", { class: "num " + signCls(value), text: signedMoney(value) });
}

function price(value) { return value === null || value === undefined ? "—" : fixed(value, 2); }

function pct(value, places = 1) {
  if (value === null || value === undefined) return "—";
  // value is a fraction (0.123 -> 12.3%): move the decimal point two places, exactly.
  let s = String(value).trim();
  if (/e/i.test(s)) s = Number(s).toFixed(10);
  const neg = s.startsWith("-");
  if (neg || s.startsWith("+")) s = s.slice(1);
  let [ip, fp = ""] = s.split(".");
  fp = fp.padEnd(2, "0");
  const moved = (ip + fp.slice(0, 2)).replace(/^0+(?=\d)/, "") + "." + (fp.slice(2) || "0");
  return fixed((neg ? "-" : "") + moved, places) + "%";
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  const s = Math.round(Number(seconds));
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function label(name, version) { return name ? (version ? name + " " + version : name) : "—"; }

function pill(text, cls, testid) { return h("span", { class: "pill " + (cls || ""), text, "data-testid": testid || null }); }

// ------------------------------------------------------------------ API access
function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function operator() { return sessionStorage.getItem(OPERATOR_KEY) || "dashboard"; }

async function api(path, opts = {}) {
  const init = { method: opts.method || "GET", headers: { Accept: "application/json" } };
  if (opts.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  if (opts.write && token()) init.headers.Authorization = "Bearer " + token();
  const res = await fetch(path, init);
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const err = new Error((data && data.error) || res.status + " " + res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
}

async function act(path, body, success) {
  if (!token()) {
    const ok = await askToken("This action needs the dashboard token.");
    if (!ok) return false;
  }
  try {
    await api(path, { method: "POST", body: { by: operator(), ...body }, write: true });
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      sessionStorage.removeItem(TOKEN_KEY);
      renderAuth();
      toast("Refused: " + err.message, "error");
      askToken(err.message);
      return false;
    }
    toast(err.message, "error");
    return false;
  }
  toast(success, "ok");
  refresh(state.tab);
  refreshHeader();
  return true;
}

// ------------------------------------------------------------------ dialogs
function askToken(message) {
  const dlg = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  const err = document.getElementById("token-error");
  document.getElementById("operator-input").value = sessionStorage.getItem(OPERATOR_KEY) || "";
  input.value = "";
  err.textContent = message || "";
  return new Promise((resolve) => {
    const form = document.getElementById("token-form");
    const cancel = document.getElementById("token-cancel");
    const done = (ok) => {
      form.removeEventListener("submit", onSubmit);
      cancel.removeEventListener("click", onCancel);
      if (dlg.open) dlg.close();
      resolve(ok);
    };
    const onCancel = () => done(false);
    const onSubmit = async (ev) => {
      ev.preventDefault();
      const name = document.getElementById("operator-input").value.trim();
      if (name) sessionStorage.setItem(OPERATOR_KEY, name); else sessionStorage.removeItem(OPERATOR_KEY);
      const ok = await verifyToken(input.value.trim());
      if (ok) done(true); else err.textContent = "That token is not accepted.";
    };
    form.addEventListener("submit", onSubmit);
    cancel.addEventListener("click", onCancel);
    dlg.showModal();
    input.focus();
  });
}

async function verifyToken(candidate) {
  if (!candidate) return false;
  const res = await fetch("/api/auth/check", { method: "POST", headers: { Authorization: "Bearer " + candidate } });
  if (res.status === 204) {
    sessionStorage.setItem(TOKEN_KEY, candidate);
    renderAuth();
    return true;
  }
  return false;
}

/* A confirmation with optional inputs; resolves to the field values, or null when cancelled. */
function confirmAction(title, text, fields = [], okLabel = "Confirm") {
  const dlg = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-error").textContent = "";
  document.getElementById("confirm-ok").textContent = okLabel;
  const box = document.getElementById("confirm-fields");
  box.replaceChildren();
  const inputs = {};
  for (const f of fields) {
    let input;
    if (f.options) {
      input = h("select", { name: f.name }, f.options.map((o) => h("option", { value: o, text: o })));
      if (f.value) input.value = f.value;
    } else {
      input = h("input", { name: f.name, type: "text", maxlength: f.max || 500, placeholder: f.placeholder || "" });
      input.value = f.value || "";
    }
    inputs[f.name] = input;
    box.append(h("label", null, f.label, input));
  }
  return new Promise((resolve) => {
    const form = document.getElementById("confirm-form");
    const cancel = document.getElementById("confirm-cancel");
    const done = (val) => {
      form.removeEventListener("submit", onSubmit);
      cancel.removeEventListener("click", onCancel);
      if (dlg.open) dlg.close();
      resolve(val);
    };
    const onCancel = () => done(null);
    const onSubmit = (ev) => {
      ev.preventDefault();
      const values = {};
      for (const f of fields) {
        values[f.name] = inputs[f.name].value.trim();
        if (f.required && !values[f.name]) {
          document.getElementById("confirm-error").textContent = f.label + " is required.";
          return;
        }
      }
      done(values);
    };
    form.addEventListener("submit", onSubmit);
    cancel.addEventListener("click", onCancel);
    dlg.showModal();
    const first = Object.values(inputs)[0];
    (first || document.getElementById("confirm-ok")).focus();
  });
}

// ------------------------------------------------------------------ header
function renderAuth() {
  const btn = document.getElementById("auth-button");
  if (token()) {
    btn.textContent = "Actions enabled — lock";
    btn.classList.add("unlocked");
  } else {
    btn.textContent = "Read-only — unlock";
    btn.classList.remove("unlocked");
  }
}

function renderBadge(ov) {
  const badge = document.getElementById("state-badge");
  const cur = ov.trading_state.current;
  badge.textContent = cur.mode;
  badge.className = "badge state-" + cur.mode.toLowerCase();
  badge.title = cur.reason || "";
  const n = ov.alerts.unacknowledged;
  const count = document.getElementById("alert-count");
  count.textContent = n > 0 ? String(n) : "";
  count.className = "count" + (ov.alerts.critical > 0 ? " critical" : "");
  const waiting = ov.approvals ? ov.approvals.pending : 0;
  document.getElementById("approval-count").textContent = waiting > 0 ? String(waiting) : "";
}

/* True when a page already shows exactly this data. A live refresh that brings nothing new then leaves the page
   alone: replacing it would lose a click in flight (mousedown on the old button, mouseup on its replacement) and
   reset focus. */
function unchanged(tab, data) {
  const text = JSON.stringify(data);
  if (state.rendered[tab] === text) return true;
  state.rendered[tab] = text;
  return false;
}

async function refreshHeader() {
  try {
    const ov = await api("/api/overview");
    state.overview = ov;
    renderBadge(ov);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    if (state.tab === "overview") renderOverview(ov);
  } catch (err) {
    document.getElementById("updated").textContent = "cannot reach the server: " + err.message;
  }
}

// ------------------------------------------------------------------ pages
function renderOverview(ov) {
  const page = document.getElementById("page-overview");
  const pnl = ov.pnl;
  const cur = ov.trading_state.current;
  let balanceTotal = null;
  for (const b of ov.balances) balanceTotal = addDec(balanceTotal, b.balance);
  const cards = h("div", { class: "cards" },
    card("Balance", balanceTotal === null ? "—" : money(balanceTotal),
      ov.balances.length ? ov.balances.map((b) => b.platform_id + " " + b.mode + ": cash " + money(b.balance)
        + (b.portfolio_value === null ? "" : ", positions " + money(b.portfolio_value))).join(" · ") : "no balance recorded",
      "", "card-balance"),
    card("Today's P&L", moneyCell(pnl.today), "realized " + signedMoney(pnl.today_realized) + " · unrealized change " + signedMoney(pnl.today_unrealized_change), "", "card-today"),
    card("Total P&L", moneyCell(pnl.total), "realized " + signedMoney(pnl.realized) + " · unrealized " + signedMoney(pnl.unrealized), "", "card-total"),
    card("Trading state", pill(cur.mode, "state-" + cur.mode.toLowerCase(), "overview-state"),
      (cur.reason || "") + (cur.blocking && cur.blocking.length && !(cur.reason || "").includes(cur.blocking.join(", "))
        ? " — blocking: " + cur.blocking.join(", ") : ""), "", "card-state"),
    card("Positions", String(pnl.open_positions) + " open", String(pnl.closed_positions) + " closed", "", "card-positions"),
    riskCard(ov.risk),
    approvalsCard(ov.approvals),
    card("Alerts", String(ov.alerts.unresolved) + " open", String(ov.alerts.unacknowledged) + " not acknowledged, " + ov.alerts.critical + " critical",
      ov.alerts.critical > 0 ? "warn" : "", "card-alerts"));
  const breakers = section("Open circuit breakers", table([
    { label: "breaker", value: (b) => h("strong", { text: b.breaker_type }) },
    { label: "since", value: (b) => when(b.triggered_at) },
    { label: "action", value: (b) => b.action || "" },
    { label: "reason", value: (b) => (b.trigger_value && b.trigger_value.reason) || b.notes || "" },
    { label: "reset", value: (b) => (b.auto_reset_at ? "automatic " + when(b.auto_reset_at) : "manual") },
  ], ov.breakers, { empty: "none open", testid: "breakers-table" }));
  const feeds = section("Data freshness", table([
    { label: "feed", value: (f) => f.feed },
    { label: "mode", value: (f) => f.mode || (f.kind === "markets" ? (f.open_markets + " open markets") : (f.live_games + " live games")) },
    { label: "last update", value: (f) => age(f.age_seconds) },
    { label: "status", value: (f) => pill(f.stale ? "stale" : "fresh", f.stale ? "bad" : "good") },
  ], ov.feeds, { empty: "no data feeds recorded yet", testid: "feeds-table" }));
  const engine = ov.trading_state.engine;
  const health = section("Engine health",
    engine ? h("p", { class: "muted", "data-testid": "engine-run" },
      "engine run " + engine.run_id + " (" + engine.kind + ", " + engine.mode + ", " + engine.platform_id + ") started " + when(engine.started_at) +
      (engine.ended_at ? ", ended " + when(engine.ended_at) : ", running") + " — state " + engine.trading_state)
      : h("p", { class: "muted", text: "no engine run recorded" }),
    table([
      { label: "component", value: (c) => c.component },
      { label: "status", value: (c) => pill(c.status, c.status === "healthy" ? "good" : c.status === "degraded" ? "warn" : "bad") },
      { label: "checked", value: (c) => age(c.age_seconds) },
      { label: "details", value: (c) => (c.details ? JSON.stringify(c.details).slice(0, 160) : "") },
    ], ov.health, { empty: "no health checks recorded", testid: "health-table" }));
  page.replaceChildren(cards, h("div", { class: "grid2" }, breakers, feeds), health);
}

function approvalsCard(a) {
  // entries held for a person's answer (trading.manual_approval); the Approvals page answers them
  if (!a) return null;
  return card("Approvals", h("a", { href: "#approvals", class: "plain", text: a.pending + " pending" }),
    a.approved + " approved, waiting for the loop to send", a.pending > 0 ? "warn" : "", "card-approvals");
}

function riskCard(r) {
  // value at risk of the open positions to settlement, and the worst account drawdown from its peak
  if (!r) return null;
  const worst = r.accounts.reduce((w, a) => (w === null || Number(a.drawdown) > Number(w.drawdown) ? a : w), null);
  const over = (r.var_share !== null && Number(r.var_share) >= Number(r.max_var_pct))
    || (worst !== null && Number(worst.drawdown) >= Number(r.max_drawdown_pct));
  const conf = pct(r.confidence, 0);
  const sub = conf + " VaR of " + r.positions + " open position(s) to settlement"
    + (r.var_share === null ? "" : ", " + pct(r.var_share) + " of equity " + money(r.equity))
    + (worst === null ? "" : " · drawdown " + pct(worst.drawdown) + " from the " + r.window_days + "-day peak "
      + money(worst.peak) + " (" + worst.platform_id + " " + worst.mode + ")");
  return card("Risk", h("span", { class: "num", text: money(r.value_at_risk) }), sub, over ? "warn" : "", "card-risk");
}

function addDec(a, b) {
  // exact sum of two decimal strings (4 places are enough for NUMERIC(14,4))
  const scale = (s) => { const [i, f = ""] = String(s).replace("+", "").split("."); const neg = i.startsWith("-");
    const v = BigInt(i.replace("-", "") + (f + "0000").slice(0, 4)); return neg ? -v : v; };
  const total = (a === null ? 0n : scale(a)) + scale(b);
  const neg = total < 0n;
  const abs = (neg ? -total : total).toString().padStart(5, "0");
  return (neg ? "-" : "") + abs.slice(0, -4) + "." + abs.slice(-4);
}

async function loadOverview() {
  await refreshHeader();
}

function triggerChips(p) {
  return h("div", { class: "chips" }, (p.triggers || []).map((t) => {
    let text;
    if (t.trigger === "time_based_urgent") text = "settles/closes in " + Math.max(0, Math.round(Number(t.distance) / 60)) + " min";
    else if (t.trigger === "trailing_stop") text = "trail " + price(t.threshold) + " (" + pct(t.distance) + " away)";
    else if (t.trigger === "partial_exit_target") text = "partial exit " + t.stage + " " + pct(t.threshold, 0) + " (" + (t.distance === null ? "?" : pct(t.distance) + " away") + ")";
    else text = t.trigger.replace("_", " ") + " " + pct(t.threshold, 0) + " (" + (t.distance === null ? "?" : pct(t.distance) + " away") + ")";
    return pill(text, t.near ? "warn" : "dim");
  }));
}

function trailing(p) {
  const ts = p.trailing_stop_state;
  if (!ts) return "—";
  if (!ts.active) return h("span", { class: "muted", text: "inactive" });
  return h("span", null, "stop " + price(ts.current_stop_price), h("br"), h("span", { class: "muted", text: "peak " + price(ts.peak_price) }));
}

async function loadPositions() {
  const data = await api("/api/positions");
  if (unchanged("positions", data)) return;
  const page = document.getElementById("page-positions");
  const open = section("Open positions (" + data.open.length + ")", table([
    { label: "market", value: (p) => h("span", { title: p.market_title || "" }, p.market_id) },
    { label: "side", value: (p) => p.side },
    { label: "qty", value: (p) => String(p.quantity), cls: "r" },
    { label: "entry", value: (p) => price(p.entry_price), cls: "r" },
    { label: "current", value: (p) => price(p.current_price), cls: "r" },
    { label: "unrealized", value: (p) => h("span", null, moneyCell(p.unrealized_pnl), " ", h("span", { class: "muted", text: pct(p.unrealized_pnl_pct) })), cls: "r" },
    { label: "trailing stop", value: trailing },
    { label: "exit triggers", value: triggerChips },
    { label: "method", value: (p) => label(p.method_name, p.method_version) },
    { label: "opened", value: (p) => when(p.entry_time) },
  ], data.open, { empty: "no open positions", testid: "open-positions", rowClass: (p) => (p.near_exit ? "near" : ""),
    rowTestId: (p) => "position-" + p.position_id }));
  const closed = section("Closed positions", table([
    { label: "market", value: (p) => h("span", { title: p.market_title || "" }, p.market_id) },
    { label: "side", value: (p) => p.side },
    { label: "qty", value: (p) => String(p.initial_quantity), cls: "r" },
    { label: "entry", value: (p) => price(p.entry_price), cls: "r" },
    { label: "exit", value: (p) => price(p.exit_price), cls: "r" },
    { label: "realized", value: (p) => moneyCell(p.realized_pnl), cls: "r" },
    { label: "exit reason", value: (p) => pill(p.exit_reason || p.status, "dim") },
    { label: "status", value: (p) => p.status },
    { label: "method", value: (p) => label(p.method_name, p.method_version) },
    { label: "closed", value: (p) => when(p.exit_time) },
  ], data.closed, { empty: "no closed positions yet", testid: "closed-positions" }));
  page.replaceChildren(open, closed);
}

function edgeQuery() {
  const form = document.getElementById("edge-filters");
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form).entries()) if (String(v).trim() !== "") params.set(k, String(v).trim());
  return params.toString();
}

async function loadEdges() {
  const body = document.getElementById("edges-body");
  let data;
  try {
    data = await api("/api/edges?" + edgeQuery());
  } catch (err) {
    delete state.rendered.edges;
    body.replaceChildren(h("p", { class: "error", "data-testid": "edges-error", text: err.message }));
    return;
  }
  if (unchanged("edges", data)) return;
  body.replaceChildren(section("Current edges (" + data.edges.length + ")", table([
    { label: "market", value: (e) => h("span", { title: e.market_title || "" }, e.market_id) },
    { label: "side", value: (e) => e.side },
    { label: "EV", value: (e) => h("span", { class: "num " + signCls(e.expected_value), text: fixed(e.expected_value, 4) }), cls: "r" },
    { label: "model P", value: (e) => fixed(e.true_win_probability, 3), cls: "r" },
    { label: "market P", value: (e) => fixed(e.market_implied_probability, 3), cls: "r" },
    { label: "price", value: (e) => price(e.market_price), cls: "r" },
    { label: "fee", value: (e) => (e.fee_per_contract === null ? "—" : fixed(e.fee_per_contract, 4)), cls: "r" },
    { label: "confidence", value: (e) => e.confidence_level || "—" },
    { label: "action", value: (e) => pill(e.recommended_action || "—", e.recommended_action === "auto_execute" ? "good" : "dim") },
    { label: "method", value: (e) => label(e.method_name, e.method_version) },
    { label: "seen", value: (e) => when(e.created_at) },
  ], data.edges, { empty: "no current edges match", testid: "edges-table" })));
}

function destroyCharts() {
  for (const c of state.charts) c.destroy();
  state.charts = [];
}

function lineChart(container, title, points, key) {
  const width = Math.max(320, container.clientWidth - 24);
  const xs = points.map((p) => new Date(p.at).getTime() / 1000);
  const ys = points.map((p) => Number(p[key]));
  if (typeof uPlot === "undefined") { container.append(h("p", { class: "error", text: "chart library missing" })); return; }
  const chart = new uPlot({
    title, width, height: 260,
    scales: { x: { time: true } },
    axes: [{ stroke: "#9aa4b2", grid: { stroke: "#2a3140" } },
      { stroke: "#9aa4b2", grid: { stroke: "#2a3140" }, size: 86,
        values: (u, vals) => vals.map((v) => (v < 0 ? "-$" : "$") + Math.abs(v).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 })) }],
    series: [{}, { label: title, stroke: "#4fa3ff", width: 2, fill: "rgba(79,163,255,0.12)",
      value: (u, v) => (v === null ? "—" : "$" + v.toFixed(2)) }],
  }, [xs, ys], container);
  state.charts.push(chart);
}

function barChart(title, rows, testid) {
  const box = h("div", { class: "panel chart", "data-testid": testid }, h("h2", { text: title }));
  box.drawBars = () => drawBars(box, rows, title);
  return box;
}

/* Horizontal bars of total P&L per group, drawn at the panel's own width (after it is in the page). */
function drawBars(box, rows, title) {
  const data = rows.map((r) => ({ key: r.key, value: Number(r.total_pnl), exact: r.total_pnl, n: r.positions }));
  if (data.length === 0) { box.append(h("p", { class: "empty", text: "no positions yet" })); return; }
  const width = Math.max(320, box.clientWidth - 28);
  const longest = Math.max(...data.map((d) => Math.min(d.key.length, 30) + String(d.n).length + 3));
  const rowH = 26, labelW = Math.min(Math.round(width * 0.5), longest * 7.6 + 12), valueW = 86;
  const maxAbs = Math.max(...data.map((d) => Math.abs(d.value)), 0.01);
  const plotW = width - labelW - valueW;
  const hasNeg = data.some((d) => d.value < 0), hasPos = data.some((d) => d.value > 0);
  const zeroX = labelW + (hasNeg && hasPos ? plotW / 2 : hasNeg ? plotW : 0);
  const scale = (hasNeg && hasPos ? plotW / 2 : plotW) / maxAbs;
  const height = data.length * rowH + 8;
  const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "bars", role: "img", "aria-label": title });
  data.forEach((d, i) => {
    const y = 4 + i * rowH;
    const w = Math.abs(d.value) * scale;
    const x = d.value >= 0 ? zeroX : zeroX - w;
    const name = d.key.length > 30 ? d.key.slice(0, 29) + "…" : d.key;
    chart.append(svg("text", { x: 4, y: y + 16, class: "bar-label" }, name + " (" + d.n + ")"));
    chart.append(svg("rect", { x, y: y + 3, width: Math.max(w, 1), height: rowH - 8, class: d.value >= 0 ? "bar-pos" : "bar-neg" }));
    chart.append(svg("text", { x: width - 4, y: y + 16, "text-anchor": "end", class: "bar-value" }, signedMoney(d.exact)));
  });
  chart.append(svg("line", { x1: zeroX, x2: zeroX, y1: 0, y2: height, class: "bar-axis" }));
  box.append(chart);
}

async function loadPnl() {
  const [pnl, trades] = await Promise.all([api("/api/pnl"), api("/api/trades?limit=200")]);
  const page = document.getElementById("page-pnl");
  destroyCharts();
  const s = pnl.summary;
  const cards = h("div", { class: "cards" },
    card("Total P&L", moneyCell(s.total), "realized " + signedMoney(s.realized) + " · unrealized " + signedMoney(s.unrealized)),
    card("Today", moneyCell(s.today), "since midnight " + pnl.timezone),
    card("Fees paid", money(s.fees), String(s.closed_positions) + " closed positions"));
  const curve = h("div", { class: "panel chart", "data-testid": "equity-chart" }, h("h2", { text: "Equity over time" }));
  const bars = h("div", { class: "grid2" },
    barChart("P&L by method", pnl.by.method, "pnl-by-method"),
    barChart("P&L by strategy", pnl.by.strategy, "pnl-by-strategy"),
    barChart("P&L by model", pnl.by.model, "pnl-by-model"),
    barChart("P&L by sport", pnl.by.sport, "pnl-by-sport"));
  const tradeTable = section("Trades (latest " + trades.trades.length + ")", table([
    { label: "time", value: (t) => when(t.execution_time) },
    { label: "market", value: (t) => t.market_id },
    { label: "action", value: (t) => t.action + " " + t.side },
    { label: "qty", value: (t) => String(t.quantity), cls: "r" },
    { label: "price", value: (t) => price(t.price), cls: "r" },
    { label: "fees", value: (t) => money(t.fees), cls: "r" },
    { label: "purpose", value: (t) => t.exit_condition || t.purpose || "" },
    { label: "method", value: (t) => label(t.method_name, t.method_version) },
    { label: "sport", value: (t) => t.sport || "" },
  ], trades.trades, { empty: "no trades yet", testid: "trades-table" }));
  page.replaceChildren(cards, curve, bars, tradeTable);
  for (const box of bars.children) box.drawBars();
  if (pnl.equity_curve.length > 1) lineChart(curve, "Account equity", pnl.equity_curve, "equity");
  if (pnl.realized_curve.length > 0) {
    const pts = pnl.realized_curve.length === 1 ? [{ at: pnl.realized_curve[0].at, cumulative: "0" }, ...pnl.realized_curve] : pnl.realized_curve;
    lineChart(curve, "Cumulative realized P&L", pts, "cumulative");
  } else if (pnl.equity_curve.length <= 1) {
    curve.append(h("p", { class: "empty", text: "no realized P&L yet" }));
  }
}

const MODEL_NEXT = { draft: ["testing", "deprecated"], training: ["validating", "testing", "deprecated"],
  validating: ["testing", "active", "deprecated"], testing: ["active", "deprecated"], active: ["deprecated"], deprecated: [] };
const METHOD_NEXT = { draft: ["testing", "deprecated"], testing: ["active", "deprecated"],
  active: ["inactive", "deprecated"], inactive: ["active", "testing", "deprecated"], deprecated: [] };
const STRATEGY_NEXT = { draft: ["testing", "deprecated"], testing: ["active", "deprecated"],
  active: ["inactive", "deprecated"], inactive: ["active", "testing", "deprecated"], deprecated: [] };

/* Buttons for the lifecycle moves a version may make; the server re-checks every rule. */
function lifecycleButtons(kind, id, name, status, nextOf) {
  const next = nextOf[status] || [];
  if (next.length === 0) return h("span", { class: "muted", text: "final" });
  return h("div", { class: "actions" }, next.map((target) => h("button", {
    type: "button", class: "btn small " + (target === "deprecated" ? "ghost" : ""), text: target,
    "data-testid": kind + "-" + id + "-" + target,
    onclick: async () => {
      const v = await confirmAction("Move " + kind + " " + name + " to " + target + "?",
        "The lifecycle rules are checked (e.g. activation needs enough paper trades or evaluated predictions); the change is recorded with your name.",
        [{ name: "reason", label: "Reason", placeholder: "why" }], "Move to " + target);
      if (v) act("/api/" + (kind === "strategy" ? "strategies" : kind + "s") + "/" + id + "/transition", { target, reason: v.reason || null }, kind + " " + name + " moved to " + target);
    },
  })));
}

async function loadMethods() {
  const data = await api("/api/methods");
  if (unchanged("methods", data)) return;
  const page = document.getElementById("page-methods");
  const methods = section("Methods", table([
    { label: "method", value: (m) => h("strong", { text: label(m.method_name, m.method_version) }) },
    { label: "status", value: (m) => pill(m.status, m.status === "active" ? "good" : m.status === "deprecated" ? "dim" : "") },
    { label: "strategy", value: (m) => label(m.strategy_name, m.strategy_version) },
    { label: "model", value: (m) => label(m.model_name, m.model_version) },
    { label: "capital share", value: (m) => (m.capital_share === null ? "—" : pct(m.capital_share, 0)), cls: "r" },
    { label: "open", value: (m) => String(m.open_positions), cls: "r" },
    { label: "closed", value: (m) => String(m.closed_positions || 0), cls: "r" },
    { label: "winners", value: (m) => String(m.winning_positions || 0), cls: "r" },
    { label: "realized", value: (m) => moneyCell(m.realized_pnl || "0"), cls: "r" },
    { label: "paper trades / ROI", value: (m) => m.paper_trades_count + " / " + (m.paper_roi === null ? "—" : pct(m.paper_roi)) },
    { label: "activated", value: (m) => when(m.activated_at) },
    { label: "lifecycle", value: (m) => lifecycleButtons("method", m.method_id, label(m.method_name, m.method_version), m.status, METHOD_NEXT) },
  ], data.methods, { empty: "no methods defined", testid: "methods-table" }));
  const strategies = section("Strategies", table([
    { label: "strategy", value: (s) => label(s.strategy_name, s.strategy_version) },
    { label: "type", value: (s) => s.strategy_type },
    { label: "status", value: (s) => pill(s.status, s.status === "active" ? "good" : s.status === "deprecated" ? "dim" : "") },
    { label: "closed", value: (s) => String(s.closed_positions), cls: "r" },
    { label: "realized", value: (s) => moneyCell(s.realized_pnl), cls: "r" },
    { label: "paper ROI", value: (s) => (s.paper_roi === null ? "—" : pct(s.paper_roi)) },
    { label: "lifecycle", value: (s) => lifecycleButtons("strategy", s.strategy_id, label(s.strategy_name, s.strategy_version), s.status, STRATEGY_NEXT) },
  ], data.strategies, { empty: "no strategies", testid: "strategies-table" }));
  const models = section("Probability models", table([
    { label: "model", value: (m) => label(m.model_name, m.model_version) },
    { label: "type", value: (m) => m.model_type },
    { label: "status", value: (m) => pill(m.status, m.status === "active" ? "good" : m.status === "deprecated" ? "dim" : "") },
    { label: "Brier", value: (m) => (m.validation_brier === null ? "—" : fixed(m.validation_brier, 4)), cls: "r" },
    { label: "evaluated", value: (m) => (m.validation_sample_size === null ? "—" : String(m.validation_sample_size)), cls: "r" },
    { label: "closed", value: (m) => String(m.closed_positions), cls: "r" },
    { label: "realized", value: (m) => moneyCell(m.realized_pnl), cls: "r" },
    { label: "lifecycle", value: (m) => lifecycleButtons("model", m.model_id, label(m.model_name, m.model_version), m.status, MODEL_NEXT) },
  ], data.models, { empty: "no models", testid: "models-table" }));
  page.replaceChildren(methods, h("div", { class: "grid2" }, strategies, models));
}

function alertQuery() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(document.getElementById("alert-filters")).entries()) if (v) params.set(k, String(v));
  return params.toString();
}

function alertActions(a) {
  const buttons = [];
  if (a.state === "triggered") {
    buttons.push(h("button", { type: "button", class: "btn small", text: "Acknowledge", "data-testid": "ack-" + a.alert_id,
      onclick: () => act("/api/alerts/" + a.alert_id + "/acknowledge", {}, "alert " + a.alert_id + " acknowledged") }));
  }
  if (a.state === "acknowledged") {
    buttons.push(h("button", { type: "button", class: "btn small", text: "Resolve", "data-testid": "resolve-" + a.alert_id,
      onclick: async () => {
        const v = await confirmAction("Resolve alert " + a.alert_id + "?", a.message,
          [{ name: "action", label: "Resolution", options: ["fixed", "false_positive", "ignored", "escalated"], value: "fixed" },
            { name: "notes", label: "Notes", placeholder: "what was done" }], "Resolve");
        if (v) act("/api/alerts/" + a.alert_id + "/resolve", { action: v.action, notes: v.notes || null }, "alert " + a.alert_id + " resolved");
      } }));
  }
  if (a.state !== "resolved") {
    buttons.push(h("button", { type: "button", class: "btn small ghost", text: "Silence", "data-testid": "silence-" + a.alert_id,
      onclick: async () => {
        const v = await confirmAction("Silence alerts like " + a.alert_id + "?",
          "New " + a.alert_type + " alerts from " + a.component + " are stored but not delivered until the silence ends.",
          [{ name: "duration", label: "For", value: "1h", placeholder: "30m, 2h, 1d", max: 20, required: true },
            { name: "comment", label: "Why", placeholder: "known issue, fixing", required: true }], "Silence");
        if (v) act("/api/alerts/" + a.alert_id + "/silence", { duration: v.duration, comment: v.comment }, "silenced for " + v.duration);
      } }));
  }
  return h("div", { class: "actions" }, buttons);
}

async function loadAlerts() {
  const body = document.getElementById("alerts-body");
  let data;
  try {
    data = await api("/api/alerts?" + alertQuery());
  } catch (err) {
    delete state.rendered.alerts;
    body.replaceChildren(h("p", { class: "error", text: err.message }));
    return;
  }
  if (unchanged("alerts", data)) return;
  const list = section("Alerts (" + data.alerts.length + ")", table([
    { label: "#", value: (a) => String(a.alert_id) },
    { label: "severity", value: (a) => pill(a.severity, "sev-" + a.severity) },
    { label: "type", value: (a) => a.alert_type },
    { label: "component", value: (a) => a.component },
    { label: "message", value: (a) => h("span", { class: "message" }, a.message) },
    { label: "raised", value: (a) => when(a.triggered_at) + (a.duplicate_count > 0 ? " (+" + a.duplicate_count + " repeats)" : "") },
    { label: "state", value: (a) => h("span", null, pill(a.state, "st-" + a.state, "state-" + a.alert_id),
      a.acknowledged_by ? h("span", { class: "muted", text: " by " + a.acknowledged_by }) : null,
      a.silenced_until ? h("span", { class: "muted", text: " silenced" }) : null) },
    { label: "", value: alertActions },
  ], data.alerts, { empty: "no alerts in this view", testid: "alerts-table", rowTestId: (a) => "alert-" + a.alert_id }));
  const silences = section("Active silences", table([
    { label: "#", value: (s) => String(s.silence_id) },
    { label: "matches", value: (s) => [s.match_alert_type && "type=" + s.match_alert_type, s.match_component && "component=" + s.match_component,
      s.match_severity && "severity=" + s.match_severity].filter(Boolean).join(" ") },
    { label: "until", value: (s) => when(s.ends_at) },
    { label: "by", value: (s) => s.created_by },
    { label: "why", value: (s) => s.comment },
    { label: "", value: (s) => h("button", { type: "button", class: "btn small ghost", text: "End now",
      onclick: async () => { if (await confirmAction("End silence " + s.silence_id + "?", "Matching alerts will be delivered again.", [], "End silence"))
        act("/api/silences/" + s.silence_id + "/expire", {}, "silence ended"); } }) },
  ], data.silences, { empty: "no active silences", testid: "silences-table" }));
  body.replaceChildren(list, silences);
}

async function loadControls() {
  const data = await api("/api/controls");
  if (unchanged("controls", data)) return;
  const page = document.getElementById("page-controls");
  const cur = data.trading_state.current;
  const manualOpen = data.open_breakers.some((b) => b.breaker_type === "manual");
  const stateBox = h("div", { class: "panel state-panel" },
    h("h2", { text: "Trading state" }),
    h("div", { class: "big-state state-" + cur.mode.toLowerCase(), "data-testid": "controls-state", text: cur.mode }),
    h("p", { class: "muted", text: (cur.reason || "") + (cur.changed_by ? " — " + cur.changed_by + ", " + when(cur.changed_at) : "") }),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "btn danger", text: "Halt trading", "data-testid": "halt-button", disabled: manualOpen || null,
        onclick: async () => {
          const v = await confirmAction("Halt trading?", "No new orders: entries stop and only exits a breaker forces may run, in every engine using this database, until someone resumes.",
            [{ name: "reason", label: "Reason", placeholder: "why you are halting", required: true }], "Halt trading");
          if (v) act("/api/trading/halt", { reason: v.reason }, "trading halted");
        } }),
      h("button", { type: "button", class: "btn primary", text: "Resume trading", "data-testid": "resume-button", disabled: manualOpen ? null : true,
        onclick: async () => {
          const others = data.open_breakers.filter((b) => b.breaker_type !== "manual" && b.action !== "alert").map((b) => b.breaker_type);
          const fields = [{ name: "notes", label: "Notes", value: "resumed from the dashboard", required: true }];
          if (others.length) fields.push({ name: "reset_all", label: "Also reset the other open breakers (" + others.join(", ") + ")?", options: ["no", "yes"], value: "no" });
          const v = await confirmAction("Resume trading?",
            others.length ? "Other breakers still block trading: " + others.join(", ") + ". Resuming is refused unless they are reset too."
              : "Ends the operator halt; trading returns to ACTIVE.", fields, "Resume trading");
          if (v) act("/api/trading/resume", { notes: v.notes, reset_all: v.reset_all === "yes" }, "trading resumed");
        } })));
  const open = section("Open breakers", table([
    { label: "breaker", value: (b) => h("strong", { text: b.breaker_type }) },
    { label: "since", value: (b) => when(b.triggered_at) },
    { label: "action", value: (b) => b.action || "" },
    { label: "reason", value: (b) => (b.trigger_value && b.trigger_value.reason) || b.notes || "" },
    { label: "reset", value: (b) => (b.auto_reset_at ? "automatic " + when(b.auto_reset_at) : "manual") },
    { label: "", value: (b) => h("button", { type: "button", class: "btn small", text: "Reset", "data-testid": "reset-" + b.breaker_type,
      onclick: async () => {
        const v = await confirmAction("Reset breaker " + b.breaker_type + "?", "Trading may resume if no other breaker blocks it.",
          [{ name: "notes", label: "Notes", value: "reset from the dashboard", required: true }], "Reset breaker");
        if (v) act("/api/breakers/" + encodeURIComponent(b.breaker_type) + "/reset", { notes: v.notes }, "breaker " + b.breaker_type + " reset");
      } }) },
  ], data.open_breakers, { empty: "no open breakers", testid: "open-breakers" }));
  const history = section("Breaker history", table([
    { label: "breaker", value: (b) => b.breaker_type },
    { label: "tripped", value: (b) => when(b.triggered_at) },
    { label: "resolved", value: (b) => (b.resolved_at ? when(b.resolved_at) : "open") },
    { label: "by", value: (b) => b.resolved_by || "" },
    { label: "how", value: (b) => b.resolution_action || "" },
  ], data.recent_breakers, { empty: "no breaker events", testid: "breaker-history" }));
  const states = section("State changes", table([
    { label: "when", value: (s) => when(s.changed_at) },
    { label: "state", value: (s) => pill(s.mode, "state-" + s.mode.toLowerCase()) },
    { label: "by", value: (s) => s.changed_by },
    { label: "reason", value: (s) => s.reason },
  ], data.trading_state.history, { empty: "no state changes recorded", testid: "state-history" }));
  page.replaceChildren(h("div", { class: "grid2" }, stateBox, open), h("div", { class: "grid2" }, history, states));
}

// ------------------------------------------------------------------ entry approvals (trading.manual_approval)
const APPROVAL_PILL = { pending: "warn", approved: "good", submitted: "good", rejected: "bad", expired: "dim" };

function expiresIn(deadline) {
  const s = Math.round((deadline - Date.now()) / 1000);
  if (s <= 0) return "due";  // the trading loop expires it on its own clock
  return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
}

function tickDeadlines() {
  for (const el of document.querySelectorAll("[data-deadline]")) el.textContent = expiresIn(Number(el.dataset.deadline));
}

function approvalSummary(a) {
  return "buy " + a.count + " " + a.side + " on " + a.market_id + " at ≤ " + price(a.limit_price);
}

async function answerApproval(a, approve) {
  const fields = [{ name: "by", label: "Your name (recorded)", value: sessionStorage.getItem(OPERATOR_KEY) || "", max: 100, required: true }];
  if (!approve) fields.push({ name: "reason", label: "Reason", placeholder: "why not", max: 1000, required: true });
  const v = await confirmAction((approve ? "Approve" : "Reject") + " entry " + a.approval_id + "?",
    approve ? approvalSummary(a) + ". The trading loop sends it only if the market and every risk check still allow it, before it expires."
      : approvalSummary(a) + ". Nothing is sent, and the loop does not ask again for this method, market and side.",
    fields, approve ? "Approve" : "Reject");
  if (!v) return;
  sessionStorage.setItem(OPERATOR_KEY, v.by);
  const body = approve ? { by: v.by } : { by: v.by, reason: v.reason };
  act("/api/approvals/" + a.approval_id + "/" + (approve ? "approve" : "reject"), body,
    "entry " + a.approval_id + (approve ? " approved" : " rejected"));
}

function approvalActions(a) {
  if (a.status !== "pending") {
    return h("span", { class: "muted", text: a.not_sent_reason ? "not sent yet: " + a.not_sent_reason : "waiting for the loop to send it" });
  }
  return h("div", { class: "actions" },
    h("button", { type: "button", class: "btn small primary", text: "Approve", "data-testid": "approve-" + a.approval_id,
      onclick: () => answerApproval(a, true) }),
    h("button", { type: "button", class: "btn small", text: "Reject", "data-testid": "reject-" + a.approval_id,
      onclick: () => answerApproval(a, false) }));
}

async function loadApprovals() {
  const [open, recent] = await Promise.all([api("/api/approvals"), api("/api/approvals?all=1&limit=50")]);
  if (unchanged("approvals", [open.approvals, recent.approvals])) return;
  const skew = Date.now() - Date.parse(open.now);  // count down on the server's clock
  const page = document.getElementById("page-approvals");
  const method = (a) => (a.method_name ? label(a.method_name, a.method_version) : a.method_id === null ? "—" : "#" + a.method_id);
  const waiting = open.approvals.filter((a) => a.status === "pending").length;
  const pending = h("div", { class: "panel", "data-testid": "approvals-panel" },
    h("h2", null, "Pending approvals ", h("span", { class: "count", "data-testid": "approvals-panel-count", text: waiting > 0 ? String(waiting) : "" })),
    table([
      { label: "#", value: (a) => String(a.approval_id) },
      { label: "market", value: (a) => h("span", { title: [a.event_id, a.sport].filter(Boolean).join(" · ") }, a.market_id) },
      { label: "side", value: (a) => a.side },
      { label: "count", value: (a) => String(a.count), cls: "r" },
      { label: "limit", value: (a) => price(a.limit_price), cls: "r" },
      { label: "edge", value: (a) => (a.edge === null ? "—" : fixed(a.edge, 4)), cls: "r" },
      { label: "method", value: method },
      { label: "mode", value: (a) => a.mode + (a.environment ? " " + a.environment : "") },
      // why: a hold the approval mode did not ask for (e.g. the real-time feed was down when it was decided)
      { label: "status", value: (a) => h("span", null, pill(a.status, APPROVAL_PILL[a.status], "approval-status-" + a.approval_id),
        a.why ? h("div", { class: "muted", text: a.why }) : null) },
      { label: "expires in", value: (a) => {
        const deadline = Date.parse(a.expires_at) + skew;
        return h("span", { class: "num", title: when(a.expires_at), "data-deadline": String(deadline), text: expiresIn(deadline) });
      } },
      { label: "", value: approvalActions },
    ], open.approvals, { empty: "no entry waits for approval", testid: "approvals-table", rowTestId: (a) => "approval-" + a.approval_id }));
  const history = section("Recent approvals", table([
    { label: "#", value: (a) => String(a.approval_id) },
    { label: "asked", value: (a) => when(a.created_at) },
    { label: "market", value: (a) => a.market_id },
    { label: "side", value: (a) => a.side },
    { label: "count", value: (a) => String(a.count), cls: "r" },
    { label: "limit", value: (a) => price(a.limit_price), cls: "r" },
    { label: "method", value: method },
    { label: "status", value: (a) => pill(a.status, APPROVAL_PILL[a.status]) },
    { label: "by", value: (a) => a.decided_by || "" },
    { label: "note", value: (a) => h("span", { class: "message" }, a.not_sent_reason || a.reason || "") },
  ], recent.approvals, { empty: "no entry approvals yet", testid: "approvals-history" }));
  page.replaceChildren(pending, history);
}

const LOADERS = { overview: loadOverview, approvals: loadApprovals, positions: loadPositions, edges: loadEdges, pnl: loadPnl,
  methods: loadMethods, alerts: loadAlerts, controls: loadControls };

async function refresh(tab) {
  // One load per tab at a time; a notice arriving meanwhile schedules exactly one more.
  if (state.loading[tab]) { state.pending[tab] = true; return; }
  state.loading[tab] = true;
  try {
    await LOADERS[tab]();
    document.getElementById("page-" + tab).dataset.loaded = "1";
  } catch (err) {
    toast("Could not load " + tab + ": " + err.message, "error");
  } finally {
    state.loading[tab] = false;
    if (state.pending[tab]) { state.pending[tab] = false; refresh(tab); }
  }
}

// ------------------------------------------------------------------ navigation and live updates
const TAB_TOPICS = { overview: ["overview"], approvals: ["approvals"], positions: ["positions"], edges: ["edges"], pnl: ["pnl", "trades"],
  methods: ["methods"], alerts: ["alerts"], controls: ["controls"] };

function show(tab) {
  if (!TABS.includes(tab)) tab = "overview";
  state.tab = tab;
  for (const el of document.querySelectorAll(".page")) el.classList.toggle("active", el.dataset.page === tab);
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.tab === tab);
  refresh(tab);
}

function connectLive() {
  const live = document.getElementById("live");
  const es = new EventSource("/api/events");
  state.eventSource = es;
  es.addEventListener("hello", () => {
    live.textContent = "live";
    live.className = "live on";
    refresh(state.tab);
    if (state.tab !== "overview") refreshHeader();
  });
  es.addEventListener("change", (ev) => {
    const msg = JSON.parse(ev.data);
    const topics = msg.topics || [];
    live.dataset.seq = String(msg.seq);
    if (topics.some((t) => ["overview", "alerts", "controls"].includes(t)) && state.tab !== "overview") refreshHeader();
    if (topics.some((t) => TAB_TOPICS[state.tab].includes(t))) refresh(state.tab);
  });
  es.addEventListener("status", (ev) => {
    const msg = JSON.parse(ev.data);
    live.textContent = msg.db === "down" ? "database unreachable" : "live";
    live.className = "live " + (msg.db === "down" ? "bad" : "on");
    if (msg.db === "up") refresh(state.tab);
  });
  es.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
  };
}

function takeTokenFromUrl() {
  // ?token=... or #token=... once: keep it for this tab only and remove it from the address bar.
  const url = new URL(window.location.href);
  let candidate = url.searchParams.get("token");
  if (candidate) url.searchParams.delete("token");
  const hash = url.hash.replace(/^#/, "");
  if (hash.startsWith("token=")) {
    candidate = decodeURIComponent(hash.slice(6));
    url.hash = "";
  }
  if (candidate) {
    sessionStorage.setItem(TOKEN_KEY, candidate);
    history.replaceState(null, "", url.pathname + url.search + url.hash);
    verifyToken(candidate).then((ok) => { if (!ok) { sessionStorage.removeItem(TOKEN_KEY); renderAuth(); toast("The token in the link is not accepted.", "error"); } });
  }
}

function init() {
  takeTokenFromUrl();
  renderAuth();
  document.getElementById("auth-button").addEventListener("click", () => {
    if (token()) { sessionStorage.removeItem(TOKEN_KEY); renderAuth(); toast("Actions locked"); }
    else askToken("");
  });
  const edgeForm = document.getElementById("edge-filters");
  edgeForm.addEventListener("submit", (ev) => { ev.preventDefault(); refresh("edges"); });
  edgeForm.addEventListener("reset", () => setTimeout(() => refresh("edges"), 0));
  const alertForm = document.getElementById("alert-filters");
  alertForm.addEventListener("change", () => refresh("alerts"));
  window.addEventListener("hashchange", () => show(location.hash.replace(/^#/, "")));
  window.addEventListener("resize", () => { if (state.tab === "pnl") refresh("pnl"); });
  setInterval(tickDeadlines, 1000);
  show(location.hash.replace(/^#/, "") || "overview");
  if (state.tab !== "overview") refreshHeader();
  connectLive();
}

document.addEventListener("DOMContentLoaded", init);

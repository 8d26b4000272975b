// signal-uploader's page: renders what the server says and forwards what the analyst does.
// Nothing here decides a row's fate: the server checks, sends and reports, as the command line does.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, workbook: false, columns: null, preview: null, page: 0, run: null, tokens: {}, source: null };
const STATUS_ORDER = ["created", "updated", "skipped", "invalid", "failed", "unknown", "dry-run"];
const STATUS_COLOURS = { created: "#2e7d32", updated: "#1565c0", skipped: "#757575", invalid: "#b26a00",
                         failed: "#c62828", unknown: "#6a1b9a", "dry-run": "#00838f" };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function say(message, hint) {
  const box = $("message");
  box.textContent = message + (hint ? " — " + hint : "");
  box.hidden = !message;
}

// Which call a shown error came from: a call started before it cannot clear it by succeeding later
// (the list of runs, read in the background, must not wipe the answer to the file just chosen).
let calls = 0;
let messageFrom = 0;

async function call(path, options = {}) {
  const started = ++calls;
  const init = { method: options.method || "GET", credentials: "same-origin", headers: {} };
  if (options.json !== undefined) {
    init.method = options.method || "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
  } else if (options.body !== undefined) {
    init.method = "POST";
    init.body = options.body;
    Object.assign(init.headers, options.headers || {});
  }
  let answer;
  try {
    answer = await fetch(path, init);
  } catch (e) {  // no answer at all: the page's server was stopped, or the connection broke
    say("the page's server could not be reached", "is signal-uploader serve still running? Start it again and reload this page");
    messageFrom = started;
    throw e;
  }
  let data = {};
  try { data = await answer.json(); } catch (e) { data = { error: "the server's answer could not be read" }; }
  if (!answer.ok) {
    say(data.error || ("the server answered " + answer.status), data.hint);
    messageFrom = started;
    throw new Error(data.error);
  }
  if (started >= messageFrom) say("");
  return data;
}

function show(id, focus = true) {
  const section = $(id);
  section.hidden = false;
  if (focus) {
    const heading = section.querySelector("h2");
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

function hideSteps(...ids) { for (const id of ids) $(id).hidden = true; }

// ---- 1. the file -------------------------------------------------------------

async function sendFile(file) {
  $("file-name").textContent = "Reading " + file.name + "…";
  $("to-columns").disabled = true;  // until this file is read: the next step must not show the last one's columns
  hideSteps("step-columns", "step-preview", "step-upload", "step-report");
  try {
    const stored = await call("/api/files", { body: file, headers: { "X-File-Name": encodeURIComponent(file.name) } });
    state.file = stored.id;
    state.workbook = stored.workbook;
    $("file-name").textContent = stored.name + " (" + stored.size.toLocaleString() + " bytes) is ready.";
    await loadColumns(false);
    $("to-columns").disabled = false;
  } catch (e) {
    $("file-name").textContent = "";
    $("to-columns").disabled = true;
  }
}

async function loadColumns(render) {
  const info = await call("/api/columns", { json: { file: state.file, api: $("api").value, sheet: $("sheet").value || null } });
  state.columns = info;
  const sheet = $("sheet");
  if (info.sheets.length) {
    const chosen = info.sheet;
    sheet.replaceChildren(...info.sheets.map((name) => el("option", { value: name, text: name })));
    sheet.value = chosen;
    sheet.disabled = false;
  } else {
    sheet.replaceChildren(el("option", { value: "", text: "(a CSV has no sheets)" }));
    sheet.disabled = true;
  }
  if (render) renderColumns(info);
}

function tokenState() {
  const api = $("api").value;
  const known = state.tokens[api];
  $("token-state").textContent = known ? "A token for this API is already held by the server; type here only to replace it." : "";
}

// ---- 2. columns --------------------------------------------------------------

function renderColumns(info) {
  const body = $("columns-body");
  body.replaceChildren();
  const saved = info.saved ? info.saved.columns : {};
  info.headers.forEach((header, i) => {
    const recognised = info.recognised[header];
    const shown = recognised === "(report column)" ? "a report's own column (not sent)"
      : recognised ? recognised : (info.custom_block ? "custom data: " + header : "not recognised (not sent)");
    const select = el("select", { id: "map-" + i, "data-header": header, "aria-label": "Send the column " + header + " as" });
    select.append(el("option", { value: "=", text: "as recognised" }));
    for (const name of info.fields) select.append(el("option", { value: name, text: name }));
    select.append(el("option", { value: "", text: "leave it out" }));
    select.value = header in saved ? saved[header] : "=";
    body.append(el("tr", {}, el("th", { scope: "row", text: header }), el("td", { text: shown }), el("td", {}, select)));
  });
  $("columns-note").textContent = (info.saved ? "Using the mapping saved as “" + info.saved.name + "” for these headers. " : "")
    + "Rows need a column for " + info.needs.join(", and one for ") + ".";
  $("mapping-name").value = info.saved ? info.saved.name : info.suggested_name;
}

function mapping() {
  const out = {};
  for (const select of document.querySelectorAll("#columns-body select")) {
    if (select.value !== "=") out[select.dataset.header] = select.value;
  }
  return out;
}

// ---- 3. preview --------------------------------------------------------------

async function runPreview() {
  hideSteps("step-upload", "step-report");
  show("step-preview");
  $("preview-busy").textContent = "Checking every row…";
  $("step-preview").setAttribute("aria-busy", "true");
  $("start-upload").disabled = true;
  const chosen = mapping();
  try {
    const preview = await call("/api/preview", { json: {
      file: state.file, api: $("api").value, sheet: $("sheet").value || null, timezone: $("timezone").value.trim(),
      phone_region: $("region").value, mapping: chosen,
      mapping_name: Object.keys(chosen).length ? $("mapping-name").value : "" } });
    state.preview = preview.id;
    state.page = 0;
    renderPreview(preview);
  } catch (e) {
    $("preview-busy").textContent = "";
  } finally {
    $("step-preview").removeAttribute("aria-busy");
  }
}

function renderCounts(counts) {
  const box = $("counts");
  box.replaceChildren(
    el("span", { class: "count", text: counts.rows.toLocaleString() + " rows" }),
    el("span", { class: "count ok", text: counts.valid.toLocaleString() + " valid" }),
    el("span", { class: "count bad", text: counts.invalid.toLocaleString() + " invalid" }),
    el("span", { class: "count warn", text: counts.warned.toLocaleString() + " with warnings" }));
  $("start-upload").textContent = "Upload the " + counts.valid.toLocaleString() + " valid rows";
  $("start-upload").disabled = counts.valid === 0;
}

function renderPreview(preview) {
  $("preview-busy").textContent = "Checked in " + preview.seconds + " s. Nothing has been sent.";
  renderCounts(preview.counts);
  $("top-problems").replaceChildren(...(preview.top_problems.length ? preview.top_problems.map((p) =>
    el("li", {}, el("strong", { text: p.rows.toLocaleString() + " × " + p.code }), " — " + p.example))
    : [el("li", { text: "none" })]));
  const warnings = [...preview.notes.map((n) => el("li", { text: n })),
    ...preview.warnings.map((w) => el("li", {}, el("strong", { text: w.rows.toLocaleString() + " × " + w.code }), " — " + w.example))];
  $("warnings").replaceChildren(...(warnings.length ? warnings : [el("li", { text: "none" })]));
  renderInvalid(preview.invalid);
  renderRequests(preview.first_requests);
}

function renderRequests(requests) {
  $("first-requests").textContent = requests.length ? requests.map((r) =>
    "row " + r.row + ": " + r.method + " " + r.path + "\n" + JSON.stringify(r.body, null, 2)).join("\n\n")
    : "(no valid rows)";
}

function renderInvalid(invalid) {
  state.page = invalid.page;
  const body = $("invalid-body");
  body.replaceChildren();
  if (!invalid.rows.length) body.append(el("tr", {}, el("td", { colspan: "3", text: "No invalid rows." })));
  for (const row of invalid.rows) body.append(invalidRow(row));
  $("page-info").textContent = "Page " + (invalid.page + 1) + " of " + invalid.pages + " (" + invalid.total.toLocaleString() + " invalid rows)";
  $("prev-page").disabled = invalid.page === 0;
  $("next-page").disabled = invalid.page + 1 >= invalid.pages;
}

function invalidRow(row) {
  const tr = el("tr", { id: "row-" + row.row });
  fillRow(tr, row);
  return tr;
}

function fillRow(tr, row) {
  const bad = [...new Set(row.errors.map((e) => e.field).filter((f) => f && f in row.cells))];
  const fixes = el("td", { class: "fixes" });
  for (const header of bad) {
    const input = el("input", { value: row.cells[header], "data-row": row.row, "data-header": header,
                                class: "bad", "aria-invalid": "true", autocomplete: "off", spellcheck: "false" });
    input.addEventListener("change", () => fix(input));
    input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); input.blur(); } });
    fixes.append(el("label", { class: "cell" }, el("span", { text: header }), input));
  }
  if (!row.errors.length) fixes.append(el("span", { class: "fixed", text: "✓ valid now: it will be sent" }));
  const why = el("td", {}, el("ul", {}, ...row.errors.map((e) => el("li", { text: (e.field ? e.field + ": " : "") + e.message }))));
  tr.replaceChildren(el("th", { scope: "row", text: String(row.row) }), fixes, why);
}

async function fix(input) {
  const row = Number(input.dataset.row);
  const result = await call("/api/preview/" + state.preview + "/fix", { json: { row, header: input.dataset.header, value: input.value } });
  const tr = $("row-" + row);
  const focused = input.dataset.header;
  fillRow(tr, result);
  renderCounts(result.counts);
  renderRequests(result.first_requests);
  const again = tr.querySelector('input[data-header="' + CSS.escape(focused) + '"]');
  (again || tr.querySelector("th")).focus();
}

async function turnPage(delta) {
  const data = await call("/api/preview/" + state.preview + "?page=" + (state.page + delta));
  renderInvalid(data.invalid);
  renderCounts(data.counts);
}

// ---- 4. upload ---------------------------------------------------------------

async function startRun(path, json) {
  const started = await call(path, { json: json || {} });
  state.run = started.run;
  hideSteps("step-report");
  $("cancel").disabled = false;
  $("progress").value = 0;
  $("progress-text").textContent = "Starting…";
  show("step-upload");
  follow(state.run);
}

function follow(runId) {
  if (state.source) state.source.close();
  const source = new EventSource("/api/runs/" + runId + "/events");
  state.source = source;
  source.addEventListener("progress", (ev) => showProgress(JSON.parse(ev.data)));
  source.addEventListener("done", (ev) => {
    source.close();
    const snapshot = JSON.parse(ev.data);
    showProgress(snapshot);
    showReport(snapshot);
  });
  source.onerror = () => { source.close(); setTimeout(() => poll(runId), 1000); };
}

async function poll(runId) {
  const snapshot = await call("/api/runs/" + runId);
  if (snapshot.state === "running") { follow(runId); return; }
  showProgress(snapshot);
  showReport(snapshot);
}

function showProgress(s) {
  const total = s.total || 0;
  const bar = $("progress");
  bar.max = Math.max(total, 1);
  bar.value = Math.min(s.answered, bar.max);
  const c = s.counts;
  // The server names the statuses to show, the target's own first (created, updated, deleted...).
  const parts = [s.answered.toLocaleString() + " of " + (total ? total.toLocaleString() : "?") + " rows answered"]
    .concat((s.shown || STATUS_ORDER).map((k) => (c[k] || 0) + " " + (k === "skipped" ? "skipped (sent before)" : k)));
  if (s.state === "running") {
    parts.push(s.rate + " rows/s");
    if (s.seconds_left !== null) parts.push("about " + duration(s.seconds_left) + " left");
  }
  $("progress-text").textContent = parts.join(" · ");
}

function duration(seconds) {
  if (seconds < 90) return seconds + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

// ---- 5. report ---------------------------------------------------------------

function showReport(s) {
  $("cancel").disabled = true;
  const summary = s.summary;
  const headline = { finished: "The upload is finished.", cancelled: "The upload was cancelled; the report is complete.",
                     stopped: "The upload stopped." }[s.state] || "";
  $("report-headline").textContent = headline + (s.message ? " " + s.message : "");
  const statuses = summary ? summary.statuses : s.counts;
  drawChart(statuses);
  const classes = summary ? summary.failed_by_error_class : s.failed_by_class;
  $("failed-classes").replaceChildren(...Object.entries(classes || {}).map(([k, v]) =>
    el("li", { text: v.toLocaleString() + " failed: " + k })));
  const hasReport = Boolean(s.report);
  for (const [id, ext] of [["download-xlsx", "xlsx"], ["download-csv", "csv"]]) {
    const link = $(id);
    link.href = hasReport ? "/api/runs/" + s.id + "/report." + ext : "#";
    link.setAttribute("download", "");
    link.hidden = !hasReport;
  }
  const failed = (statuses.failed || 0) > 0;
  $("retry-failed").disabled = !failed;
  $("retry-not-found").disabled = !failed;
  show("step-report");
  loadRuns();
}

function drawChart(statuses) {
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  const entries = STATUS_ORDER.filter((k) => statuses[k]).map((k) => [k, statuses[k]])
    .concat(Object.entries(statuses).filter(([k, v]) => v && !STATUS_ORDER.includes(k)));
  const most = Math.max(1, ...entries.map(([, v]) => v));
  svg.replaceChildren();
  svg.setAttribute("height", String(Math.max(entries.length, 1) * 28));
  entries.forEach(([name, value], i) => {
    const y = i * 28;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", "0"); label.setAttribute("y", String(y + 18));
    label.textContent = name;
    const bar = document.createElementNS(ns, "rect");
    bar.setAttribute("x", "90"); bar.setAttribute("y", String(y + 4));
    bar.setAttribute("height", "18"); bar.setAttribute("width", String(Math.max(2, 340 * value / most)));
    bar.setAttribute("fill", STATUS_COLOURS[name] || "#455a64");
    const count = document.createElementNS(ns, "text");
    count.setAttribute("x", String(96 + 340 * value / most)); count.setAttribute("y", String(y + 18));
    count.textContent = value.toLocaleString();
    svg.append(label, bar, count);
  });
  $("chart-caption").textContent = "Rows by outcome: " + entries.map(([k, v]) => k + " " + v).join(", ");
}

async function loadRuns() {
  const data = await call("/api/runs");
  const body = $("past-body");
  body.replaceChildren(...(data.runs.length ? data.runs.map((r) => {
    const statuses = r.summary ? Object.entries(r.summary.statuses).map(([k, v]) => k + " " + v).join(", ") : "";
    const link = r.report && r.state !== "running"
      ? el("a", { href: "/api/runs/" + r.id + "/report.xlsx", download: "", text: "Excel" }) : el("span", { text: "" });
    return el("tr", {}, el("td", { text: (r.started || "").replace("T", " ").replace("+00:00", " UTC") }),
      el("td", { text: r.file }), el("td", { text: r.api }), el("td", { text: r.job }),
      el("td", { text: r.state + (statuses ? ": " + statuses : "") }), el("td", {}, link));
  }) : [el("tr", {}, el("td", { colspan: "6", text: "No runs yet." }))]));
  $("sources-body").replaceChildren(...(data.sources.length ? data.sources.map((s) => el("tr", {},
    el("td", { text: s.source }), el("td", { text: s.api }), el("td", { text: s.confirmed.toLocaleString() }),
    el("td", { text: s.pending.toLocaleString() }),
    el("td", { text: s.last_confirmed.replace("T", " ").replace("+00:00", " UTC") })))
    : [el("tr", {}, el("td", { colspan: "5", text: "Nothing uploaded yet." }))]));
}

// ---- wiring ------------------------------------------------------------------

async function begin() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && !$("timezone").value) $("timezone").value = zone;
  const known = await call("/api/state");
  state.tokens = known.tokens;
  tokenState();
  loadRuns();

  $("file-input").addEventListener("change", () => { if ($("file-input").files[0]) sendFile($("file-input").files[0]); });
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    if (ev.dataTransfer.files[0]) sendFile(ev.dataTransfer.files[0]);
  });
  $("api").addEventListener("change", () => { tokenState(); if (state.file) loadColumns(!$("step-columns").hidden); });
  $("sheet").addEventListener("change", () => loadColumns(!$("step-columns").hidden));
  $("to-columns").addEventListener("click", async () => {
    const token = $("token").value;
    if (token) {
      await call("/api/token", { json: { api: $("api").value, token } });
      $("token").value = "";
      state.tokens[$("api").value] = true;
      tokenState();
    }
    await loadColumns(true);
    hideSteps("step-preview", "step-upload", "step-report");
    show("step-columns");
  });
  $("to-preview").addEventListener("click", runPreview);
  $("back-columns").addEventListener("click", () => show("step-columns"));
  $("prev-page").addEventListener("click", () => turnPage(-1));
  $("next-page").addEventListener("click", () => turnPage(1));
  $("start-upload").addEventListener("click", () => startRun("/api/preview/" + state.preview + "/upload"));
  $("cancel").addEventListener("click", async () => {
    $("cancel").disabled = true;
    $("progress-text").textContent = "Cancelling: nothing more is sent; waiting for the answers in flight…";
    await call("/api/runs/" + state.run + "/cancel", { json: {} });
  });
  $("retry-failed").addEventListener("click", () => startRun("/api/runs/" + state.run + "/retry", { include_not_found: false }));
  $("retry-not-found").addEventListener("click", () => startRun("/api/runs/" + state.run + "/retry", { include_not_found: true }));
  $("start-over").addEventListener("click", () => {
    hideSteps("step-columns", "step-preview", "step-upload", "step-report");
    $("file-input").value = "";
    $("file-name").textContent = "";
    $("to-columns").disabled = true;
    $("file-input").focus();
  });
}

document.addEventListener("DOMContentLoaded", () => { begin().catch(() => {}); });

// signal-uploader's page: renders what the server says and forwards what the analyst does.
// Nothing here decides a row's fate: the server checks, sends and reports, as the command line does.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, workbook: false, columns: null, preview: null, page: 0, show: "invalid", run: null,
                tokens: {}, source: null, headerRow: null, chosen: null, notes: [], previewColumns: [] };
const STATUS_ORDER = ["created", "updated", "skipped", "invalid", "failed", "unknown", "not sent", "dry-run"];
const STATUS_COLOURS = { created: "#2e7d32", updated: "#1565c0", skipped: "#757575", invalid: "#b26a00",
                         failed: "#c62828", unknown: "#6a1b9a", "not sent": "#546e7a", "dry-run": "#00838f" };

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

// A refused request has said why (call() shows the message); nothing more to do with it.
function quietly(promise) { return promise.catch(() => {}); }

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
  state.headerRow = null;
  state.chosen = null;
  try {
    const stored = await call("/api/files", { body: file, headers: { "X-File-Name": encodeURIComponent(file.name) } });
    state.file = stored.id;
    state.workbook = stored.workbook;
    $("file-name").textContent = stored.name + " (" + stored.size_text + ") is ready.";
    await loadColumns(false);
    $("to-columns").disabled = false;
  } catch (e) {
    $("file-name").textContent = "";
    $("to-columns").disabled = true;
  }
}

async function loadColumns(render) {
  const info = await call("/api/columns", { json: { file: state.file, api: $("api").value,
    sheet: $("sheet").value || null, header_row: state.headerRow, chosen: state.chosen } });
  state.columns = info;
  state.headerRow = info.header_row;
  state.chosen = info.chosen;
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

// The token field is handed to the server whenever it holds something: before the columns,
// before an upload or a retry, so a token typed after the "no API token" message is the one used.
async function handToken(api) {
  api = api || $("api").value;
  for (const [id, kind] of [["token", "token"], ["refresh-token", "refresh"]]) {
    const token = $(id).value;
    if (!token) continue;
    await call("/api/token", { json: { api, token, kind } });
    $(id).value = "";
    state.tokens[api] = true;
  }
  tokenState();
}

// The chosen API's own settings (from its declaration: an organization, an account), its kind of
// token, and what its address looks like.
function apiChanged() {
  const api = $("api").value;
  for (const node of document.querySelectorAll("[data-apis]")) node.hidden = !node.dataset.apis.split(" ").includes(api);
  const option = $("api").selectedOptions[0];
  for (const node of document.querySelectorAll(".refresh")) node.hidden = option.dataset.refresh !== "1";
  const example = option.dataset.example;
  let same = false;
  try { same = new URL($("base-url-input").value).pathname.split("/")[1] === new URL(example).pathname.split("/")[1]; } catch (e) { /* not an address yet */ }
  $("base-url-example").textContent = same ? "" : "This API's address looks like " + example;
  tokenState();
}

function ownSettings(api) {
  api = api || $("api").value;
  const out = {};
  for (const input of document.querySelectorAll("input.own")) {
    if (input.dataset.apis.split(" ").includes(api) && input.value.trim()) out[input.dataset.name] = input.value.trim();
  }
  return out;
}

function tokenState() {
  const api = $("api").value;
  const known = state.tokens[api];
  $("token-state").textContent = known ? "A token for this API is already held by the server; type here only to replace it." : "";
}

// ---- 2. columns --------------------------------------------------------------

const HOW = { exact: "exact match", remembered: "remembered", close: "close match", report: "", none: "" };

function matchText(info, header) {
  const m = info.matches[header];
  if (m.how === "report") return "a report's own column (not sent)";
  if (m.how === "none") return info.custom_block ? "custom data: " + header : "no field matches: not sent";
  if (m.how === "close") return m.field + " — " + HOW.close + ", " + Math.round(m.confidence * 100) + "% sure";
  return m.field + " — " + HOW[m.how];
}

function renderColumns(info) {
  // the header row: the first rows of the sheet, the chosen one marked
  const pick = $("header-row");
  pick.replaceChildren(...info.rows.map((r) => el("option", { value: String(r.row),
    text: "Row " + r.row + ": " + r.cells.filter((c) => c.trim()).slice(0, 4).join(" · ").slice(0, 70) })));
  pick.value = String(info.header_row);
  $("sheet-rows").tBodies[0].replaceChildren(...info.rows.slice(0, 8).map((r) => {
    const tr = el("tr", { class: r.row === info.header_row ? "chosen" : "" },
      el("th", { scope: "row", text: String(r.row) }), ...r.cells.slice(0, 8).map((c) => el("td", { text: c })));
    return tr;
  }));
  const body = $("columns-body");
  body.replaceChildren();
  info.headers.forEach((header, i) => {
    const m = info.matches[header];
    const select = el("select", { id: "map-" + i, "data-header": header, "aria-label": "Send the column " + header + " as" });
    const asRead = m.how === "exact" ? "as matched (" + m.field + ")" : m.how === "report" ? "not sent (report column)"
      : info.custom_block ? "as custom data" : "not sent";
    select.append(el("option", { value: "=", text: asRead }));
    for (const name of info.fields) select.append(el("option", { value: name, text: name }));
    select.append(el("option", { value: "", text: "leave it out" }));
    select.value = header in info.chosen ? info.chosen[header] : "=";
    const matched = el("td", { class: "match " + m.how, text: matchText(info, header) });
    if (header in info.chosen && info.chosen[header] !== m.field) matched.textContent = chosenText(info.chosen[header]);
    select.addEventListener("change", () => { matched.textContent = select.value === "=" ? matchText(info, header) : chosenText(select.value); choicesChanged(); });
    body.append(el("tr", {}, el("th", { scope: "row", text: header }), matched, el("td", {}, select)));
  });
  $("columns-note").textContent = (info.saved ? "Using the mapping saved as “" + info.saved.name + "” for these headers. " : "")
    + "Rows need a column for " + info.needs.join(", and one for ") + ".";
  $("mapping-name").value = info.saved ? info.saved.name : info.suggested_name;
  showMissing(info.missing);
}

function chosenText(value) { return value === "" ? "left out (your choice)" : "sent as " + value + " (your choice)"; }

function showMissing(missing) {
  const box = $("columns-missing");
  box.hidden = !missing.length;
  box.textContent = missing.length ? "Nothing is sent as these yet: " + missing.join("; ") + ". Choose the columns that hold them." : "";
  $("to-preview").disabled = missing.length > 0;
}

function mapping() {
  const out = {};
  for (const select of document.querySelectorAll("#columns-body select")) {
    if (select.value !== "=") out[select.dataset.header] = select.value;
  }
  return out;
}

async function choicesChanged() {
  state.chosen = mapping();
  const info = await call("/api/columns", { json: { file: state.file, api: $("api").value,
    sheet: $("sheet").value || null, header_row: state.headerRow, chosen: state.chosen } });
  showMissing(info.missing);
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
      phone_region: $("region").value, mapping: chosen, header_row: state.headerRow,
      base_url: $("base-url-input").value.trim(), ...ownSettings(),
      mapping_name: Object.keys(chosen).length ? $("mapping-name").value : "" } });
    state.preview = preview.id;
    state.page = 0;
    state.show = "invalid";
    $("show-rows").value = "invalid";
    renderPreview(preview);
  } catch (e) {
    $("preview-busy").textContent = "";
  } finally {
    $("step-preview").removeAttribute("aria-busy");
  }
}

function renderCounts(counts) {
  state.counts = counts;
  const box = $("counts");
  box.replaceChildren(
    el("span", { class: "count", text: counts.rows.toLocaleString() + " rows" }),
    el("span", { class: "count ok", text: counts.valid.toLocaleString() + " valid" }),
    el("span", { class: "count bad", text: counts.invalid.toLocaleString() + " invalid" }),
    el("span", { class: "count warn", text: counts.warned.toLocaleString() + " with warnings" }));
  $("start-upload").textContent = "Upload the " + counts.valid.toLocaleString() + " valid rows";
  $("start-upload").disabled = counts.valid === 0;
}

function problemItem(p) {
  return el("li", {}, el("strong", { text: p.rows.toLocaleString() + " " + (p.rows === 1 ? "row" : "rows") + ": " + p.words }),
    " ", el("span", { class: "code", title: p.example, text: p.code }), el("div", { class: "muted small", text: p.example }));
}

// The journal's plan of the valid rows, in the library's words (uploader.plan), as the CLI's summary says it.
function renderPlan(plan, line) {
  $("plan-line").textContent = line;
  const skipped = plan.filter((p) => !p.sent).reduce((n, p) => n + p.rows, 0);
  if (skipped && state.counts) $("start-upload").textContent = "Upload the " + state.counts.valid.toLocaleString()
    + " valid rows (" + skipped.toLocaleString() + " sent before are not sent again)";
  $("plan-list").replaceChildren(...plan.map((p) => el("li", {},
    el("strong", { text: p.rows.toLocaleString() + " " + p.plan }), " — " + p.words)));
}

// Everything the preview says of the whole file, as it is now (after every correction).
function renderChecked(checked) {
  renderCounts(checked.counts);
  renderPlan(checked.plan || [], checked.plan_line || "");
  $("top-problems").replaceChildren(...(checked.top_problems.length ? checked.top_problems.map(problemItem)
    : [el("li", { text: "none" })]));
  const warnings = [...(state.notes || []).map((n) => el("li", { text: n })), ...checked.warnings.map(problemItem)];
  $("warnings").replaceChildren(...(warnings.length ? warnings : [el("li", { text: "none" })]));
  renderRequests(checked.first_requests);
  if (checked.totals && state.pageInfo) pageInfo(state.pageInfo.page,
    Math.max(Math.ceil(checked.totals[state.show] / checked.page_rows), 1), checked.totals[state.show]);
  const undo = checked.undo || [];
  $("bulk-undo").disabled = !undo.length;
  $("bulk-undo").textContent = undo.length ? "Undo: " + undo[undo.length - 1] : "Undo";
}

function renderPreview(preview) {
  $("preview-busy").textContent = "Checked in " + preview.seconds + " s. Nothing has been sent.";
  state.notes = preview.notes;
  state.previewColumns = preview.columns;
  renderChecked(preview);
  renderClocks(preview.clocks, preview.timezone);
  const column = $("bulk-column");
  const bad = new Set(preview.invalid.rows.flatMap((r) => r.errors.map((e) => e.field)));
  const ordered = [...preview.columns.filter((c) => bad.has(c)), ...preview.columns.filter((c) => !bad.has(c))];
  column.replaceChildren(...ordered.map((c) => el("option", { value: c, text: c })));
  bulkKind();
  $("bulk-result").textContent = "";
  renderInvalid(preview.invalid);
}

function renderClocks(clocks, timezone) {
  $("clock-local").textContent = "In " + (timezone || "the chosen timezone");
  const rows = clocks.flatMap((c) => c.examples.map((e) => el("tr", {}, el("th", { scope: "row", text: c.header }),
    el("td", { text: String(e.row) }), el("td", { text: e.file }), el("td", { text: e.local }), el("td", { text: e.utc }))));
  $("clocks-body").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "5", text: "No times in the valid rows." }))]));
}

function renderRequests(requests) {
  $("first-requests").textContent = requests.length ? requests.map((r) =>
    "row " + r.row + ": " + r.method + " " + r.path + "\n" + JSON.stringify(r.body, null, 2)).join("\n\n")
    : "(no valid rows)";
}

const SHOW_WORDS = { invalid: "invalid rows", warned: "rows with warnings", corrected: "corrected rows", all: "rows" };

function renderInvalid(invalid) {
  state.page = invalid.page;
  state.show = invalid.show;
  $("invalid-head").replaceChildren(el("tr", {}, el("th", { scope: "col", text: "Row" }),
    ...invalid.headers.map((h) => el("th", { scope: "col", text: h }))));
  const body = $("invalid-body");
  body.replaceChildren();
  if (!invalid.rows.length) body.append(el("tr", {}, el("td", { colspan: String(invalid.headers.length + 1), text: "No " + SHOW_WORDS[invalid.show] + "." })));
  for (const row of invalid.rows) body.append(invalidRow(row, invalid.headers));
  pageInfo(invalid.page, invalid.pages, invalid.total);
}

// The pager's words: kept current after every correction (the rows on show stay until the page turns).
function pageInfo(page, pages, total) {
  state.pageInfo = { page, pages, total };
  $("page-info").textContent = "Page " + (Math.min(page, pages - 1) + 1).toLocaleString() + " of " + pages.toLocaleString()
    + " (" + total.toLocaleString() + " " + SHOW_WORDS[state.show] + ")";
  $("prev-page").disabled = page === 0;
  $("next-page").disabled = page + 1 >= pages;
}

function invalidRow(row, headers) {
  const tr = el("tr", { id: "row-" + row.row });
  fillRow(tr, row, headers);
  return tr;
}

function fillRow(tr, row, headers) {
  const errors = {}, warnings = {};
  for (const e of row.errors) (errors[e.field] = errors[e.field] || []).push(e);
  for (const w of row.warnings || []) (warnings[w.field] = warnings[w.field] || []).push(w);
  const general = row.errors.filter((e) => !(e.field in row.cells));
  const head = el("th", { scope: "row" }, String(row.row));
  if (!row.errors.length) head.append(el("span", { class: "fixed", text: " ✓ valid" }));
  for (const e of general) head.append(el("div", { class: "why bad-text", title: e.code, text: e.words + ": " + e.message }));
  const cells = headers.map((h) => {
    const td = el("td", { "data-header": h });
    const corrected = (row.corrected || {})[h];
    if (errors[h] || corrected) {
      const input = el("input", { value: row.cells[h], "data-row": row.row, "data-header": h, autocomplete: "off",
        spellcheck: "false", "aria-label": "Row " + row.row + ", " + h });
      if (errors[h]) { input.className = "bad"; input.setAttribute("aria-invalid", "true"); }
      input.addEventListener("change", () => fix(input));
      input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); input.blur(); } });
      td.append(input);
    } else {
      td.append(el("span", { text: row.cells[h] }));
    }
    if (corrected) td.append(el("div", { class: "was", text: "was “" + corrected[0] + "” → “" + corrected[1] + "”" }));
    for (const e of errors[h] || []) td.append(el("div", { class: "why bad-text", title: e.code + ": " + e.message, text: e.words }));
    for (const w of warnings[h] || []) td.append(el("div", { class: "why warn-text", title: w.code + ": " + w.message, text: w.words }));
    return td;
  });
  tr.replaceChildren(head, ...cells);
}

async function fix(input) {
  const row = Number(input.dataset.row);
  const result = await call("/api/preview/" + state.preview + "/fix", { json: { row, header: input.dataset.header, value: input.value } });
  const tr = $("row-" + row);
  const focused = input.dataset.header;
  fillRow(tr, { ...result, warnings: [] }, state.previewColumns);
  renderChecked(result);
  const again = tr.querySelector('input[data-header="' + CSS.escape(focused) + '"]');
  (again || tr.querySelector("th")).focus();
}

let turns = 0;  // only the latest page asked for is shown: an earlier answer arriving late is dropped

async function turnPage(delta, show) {
  const page = show === undefined ? state.page + delta : 0;
  const turn = ++turns;
  const data = await call("/api/preview/" + state.preview + "?page=" + page + "&show=" + encodeURIComponent(show || state.show));
  if (turn !== turns) return;
  renderInvalid(data.invalid);
  renderChecked(data);
}

// -- fixes in bulk: counted first, applied, undone

function bulkKind() {
  const kind = $("bulk-kind").value;
  const find = { currency: null, replace: "Find", set: null, same: "Cells holding exactly" }[kind];
  const value = { currency: null, replace: "Replace with", set: "Set to", same: "Correct them to" }[kind];
  $("bulk-find").hidden = $("bulk-find-label").hidden = !find;
  $("bulk-value").hidden = $("bulk-value-label").hidden = !value;
  if (find) $("bulk-find-label").textContent = find;
  if (value) $("bulk-value-label").textContent = value;
  $("bulk-apply").disabled = true;
  $("bulk-result").textContent = "";
}

function bulkOptions(apply) {
  const kind = $("bulk-kind").value;
  const find = $("bulk-find").value, value = $("bulk-value").value;
  return { column: $("bulk-column").value, kind, find, replace: value, value, apply };
}

async function bulkCheck() {
  const result = await call("/api/preview/" + state.preview + "/bulk", { json: bulkOptions(false) });
  const examples = result.examples.map((e) => "row " + e.row + ": “" + e.old + "” → “" + e.new + "”").join("; ");
  $("bulk-result").textContent = result.changes
    ? "This changes " + result.changes.toLocaleString() + " " + (result.changes === 1 ? "cell" : "cells") + " of " + result.column + " (" + examples + (result.changes > 5 ? "; …" : "") + ")."
    : "This changes no cell of " + result.column + ".";
  $("bulk-apply").disabled = !result.changes;
  $("bulk-apply").textContent = result.changes ? "Apply to " + result.changes.toLocaleString() + " " + (result.changes === 1 ? "cell" : "cells") : "Apply";
}

async function bulkApply() {
  $("bulk-apply").disabled = true;
  const result = await call("/api/preview/" + state.preview + "/bulk", { json: bulkOptions(true) });
  $("bulk-result").textContent = "Changed " + result.changes.toLocaleString() + " " + (result.changes === 1 ? "cell" : "cells") + " of " + result.column + "; every changed row was checked again.";
  renderChecked(result);
  await turnPage(0, state.show);
  $("bulk-apply").textContent = "Apply";
}

async function bulkUndo() {
  const result = await call("/api/preview/" + state.preview + "/undo", { json: {} });
  $("bulk-result").textContent = "Undone: " + result.undone + ".";
  renderChecked(result);
  await turnPage(0, state.show);
}

// ---- 4. upload ---------------------------------------------------------------

async function startRun(path, json) {
  await handToken();
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

// Each API's documented pace (requests a minute), from the API list the server rendered.
const TARGET_PACE = {};
document.addEventListener("DOMContentLoaded", () => {
  for (const option of $("api").options) TARGET_PACE[option.value] = Number(option.dataset.pace || 0);
});

function showProgress(s) {
  const total = s.total || 0;
  const bar = $("progress");
  bar.max = Math.max(total, 1);
  bar.value = Math.min(s.answered, bar.max);
  const c = s.counts;
  // The server names the statuses to show, the target's own first (created, updated, deleted...).
  if (!total && !s.answered && s.state === "running") {
    $("progress-text").textContent = "Checking the rows…";
    return;
  }
  const parts = [s.answered.toLocaleString() + " of " + (total ? total.toLocaleString() : "?") + " rows answered"]
    .concat((s.shown || STATUS_ORDER).map((k) => (c[k] || 0).toLocaleString() + " " + (k === "skipped" ? "skipped (sent before)" : k)));
  const pace = Number((TARGET_PACE[s.api] || 0));
  if (s.state === "running" && pace) parts.push("pace " + Math.round(s.rate * 60).toLocaleString() + " requests a minute (the API allows " + pace + ")");
  if (s.renewals) parts.push("access token renewed " + (s.renewals === 1 ? "once" : s.renewals + " times"));
  if (s.state === "running") {
    parts.push(s.rate.toLocaleString() + " rows/s");
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
  const retry = s.job.startsWith("retry");
  const what = retry ? "The retry" : "The upload";
  const headline = { finished: what + " is finished.", cancelled: what + " was cancelled; the report is complete.",
                     stopped: what + " stopped." }[s.state] || "";
  $("report-headline").textContent = headline + (s.message ? " " + s.message : "");
  // The run's own counts (a retry's are the rows it sent again), rows left unsent apart from failed ones.
  const statuses = s.counts;
  drawChart(statuses);
  $("report-whole").textContent = retry && s.report_statuses ? "The report now holds: "
    + Object.entries(s.report_statuses).map(([k, v]) => v.toLocaleString() + " " + k).join(", ") + "." : "";
  const words = s.failed_words || {};
  $("failed-classes").replaceChildren(...Object.entries(s.failed_by_class || {}).map(([k, v]) =>
    el("li", { text: v.toLocaleString() + " failed: " + (words[k] ? words[k] + " (" + k + ")" : k) })));
  const hasReport = Boolean(s.report);
  for (const [id, ext] of [["download-xlsx", "xlsx"], ["download-csv", "csv"]]) {
    const link = $(id);
    link.href = hasReport ? "/api/runs/" + s.id + "/report." + ext : "#";
    link.setAttribute("download", "");
    link.hidden = !hasReport;
  }
  const failed = (statuses.failed || 0) + (statuses["not sent"] || 0) > 0;
  state.unknown = statuses.unknown || 0;
  $("retry-unknown").hidden = !state.unknown;
  $("retry-unknown").textContent = "Send the " + state.unknown.toLocaleString() + " row" + (state.unknown === 1 ? "" : "s") + " whose outcome is unknown…";
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
  const height = Math.max(entries.length, 1) * 28;
  svg.setAttribute("height", String(height));
  svg.setAttribute("viewBox", "0 0 520 " + height);  // scales down in a narrow window
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
  $("chart-caption").textContent = "Rows by outcome: " + entries.map(([k, v]) => k + " " + v.toLocaleString()).join(", ");
}

async function loadRuns() {
  const data = await call("/api/runs");
  const body = $("past-body");
  body.replaceChildren(...(data.runs.length ? data.runs.map((r) => {
    const counts = r.counts || (r.summary ? r.summary.statuses : {});
    const statuses = Object.entries(counts).map(([k, v]) => k + " " + v.toLocaleString()).join(", ");
    const link = r.report && r.state !== "running"
      ? el("a", { href: "/api/runs/" + r.id + "/report.xlsx", download: "", text: "Excel" }) : el("span", { text: "" });
    const forget = el("button", { type: "button", class: "secondary small", text: "Forget",
      "aria-label": "Forget " + r.file + " and its reports" });
    forget.disabled = r.state === "running";
    forget.addEventListener("click", () => forgetRun(r));
    const outcome = el("td", { text: r.state + (statuses ? ": " + statuses : "") });
    if (r.message) outcome.append(el("div", { class: "muted small", text: r.message }));
    return el("tr", {}, el("td", { text: when(r.started) }),
      el("td", { text: r.file }), el("td", { text: r.api }), el("td", { text: r.job }),
      outcome, el("td", {}, link), el("td", {}, forget));
  }) : [el("tr", {}, el("td", { colspan: "7", text: "No runs yet." }))]));
  $("sources-body").replaceChildren(...(data.sources.length ? data.sources.map((s) => el("tr", {},
    el("td", { text: s.source }), el("td", { text: s.api }), el("td", { text: s.confirmed.toLocaleString() }),
    el("td", { text: s.pending.toLocaleString() }),
    el("td", { text: when(s.last_confirmed) })))
    : [el("tr", {}, el("td", { colspan: "5", text: "Nothing uploaded yet." }))]));
}

// ---- calls on now -------------------------------------------------------------

// A watch's own columns, after the API's (whose fields and order come with the rows, as the library flattens them).
const SEEN_COLUMNS = ["first_seen", "last_seen", "sighting"];
const MOST_COLUMNS = 9;

function callsListingChanged() {
  const listing = $("calls-listing").value;
  for (const node of document.querySelectorAll("[data-listing]")) node.hidden = node.dataset.listing !== listing;
}

async function startCalls(kind) {
  const listing = $("calls-listing").value;
  const api = $("calls-listing").selectedOptions[0].dataset.api;
  await handToken(api);
  const body = { listing, format: $("calls-format").value, base_url: $("base-url-input").value.trim(), ...ownSettings(api) };
  for (const input of document.querySelectorAll(".calls-filter")) if (!input.hidden && input.value.trim()) body[input.dataset.name] = input.value.trim();
  if (kind === "watch") body.watch = Number($("calls-every").value) || 5;
  if (kind === "lookups") {
    if (!state.file) { say("choose a file in step 1 first", "its rows are looked up one by one"); return; }
    body.file = state.file;
  }
  const started = await call("/api/calls", { json: body });
  state.calls = started.calls;
  $("calls-export").hidden = true;
  $("calls-stop").disabled = false;
  $("calls-status").textContent = kind === "watch" ? "Watching…" : "Asking the API…";
  followCalls(started.calls);
}

function followCalls(id) {
  clearTimeout(state.callsTimer);
  const tick = async () => {
    let snapshot;
    try { snapshot = await call("/api/calls/" + id); } catch (e) { return; }
    if (state.calls !== id) return;
    showCalls(snapshot);
    if (snapshot.state === "running") state.callsTimer = setTimeout(tick, 700);
  };
  tick();
}

function showCalls(s) {
  const lookups = Object.entries(s.lookups || {}).map(([k, v]) => v.toLocaleString() + " " + k).join(", ");
  const running = s.state === "running";
  let status = s.headline || (s.job === "watch" ? "Watching: " + s.polls.toLocaleString() + " looks, "
    + s.captured.toLocaleString() + " calls seen" : lookups ? "Looked up so far: " + lookups : "Asking the API…");
  if (!running && s.message) status += " — " + s.message;
  if (!running && s.state === "cancelled") status = "Stopped. " + status;
  $("calls-status").textContent = status;
  const own = [];
  for (const row of s.calls) for (const [c, v] of Object.entries(row)) {
    if (v !== "" && !SEEN_COLUMNS.includes(c) && !c.endsWith("_utc") && !own.includes(c)) own.push(c);
  }
  const shown = own.slice(0, MOST_COLUMNS).concat(SEEN_COLUMNS.filter((c) => s.calls.some((row) => row[c])));
  $("calls-head").replaceChildren(el("tr", {}, ...shown.map((c) => el("th", { scope: "col", text: c.replaceAll("_", " ") }))));
  const engage = s.calls.some((row) => row.uii);
  const ticked = new Set([...document.querySelectorAll("#calls-body input.tick:checked")].map((box) => box.value));
  $("calls-head").firstChild.prepend(el("th", { scope: "col", text: engage ? "Choose" : "" }));
  $("calls-body").replaceChildren(...s.calls.map((row) => {
    const first = el("td");
    if (row.uii) {
      const box = el("input", { type: "checkbox", class: "tick", value: row.uii, "aria-label": "Choose the call " + row.uii });
      box.checked = ticked.has(row.uii);
      box.addEventListener("change", tickedCount);
      first.append(box);
    }
    return el("tr", { "data-call": row.transaction_id || row.uii || "" }, first,
      ...shown.map((c) => el("td", { text: c === "sighting" ? ({ ended: "ended", new: "on", changed: "on (changed)" }[row[c]] || row[c] || "") : (row[c] || "") })));
  }));
  $("calls-actions").hidden = !engage;
  tickedCount();
  $("calls-stop").disabled = !running;
  const link = $("calls-export");
  link.hidden = !s.export;
  link.href = s.export ? "/api/calls/" + s.id + "/export" : "#";
}

function tickedCount() {
  const n = document.querySelectorAll("#calls-body input.tick:checked").length;
  $("calls-ticked").textContent = n.toLocaleString() + " call" + (n === 1 ? "" : "s") + " ticked";
  $("calls-make-file").disabled = n === 0;
}

// The ticked calls become a file for the chosen action, checked and sent as any file is (step 2 on).
async function makeActionFile() {
  const option = $("calls-action").selectedOptions[0];
  const chosen = [...document.querySelectorAll("#calls-body input.tick:checked")].map((box) => box.value);
  const stored = await call("/api/calls/" + state.calls + "/actions",
    { json: { api: option.value, calls: chosen, values: JSON.parse(option.dataset.values) } });
  hideSteps("step-columns", "step-preview", "step-upload", "step-report");
  state.file = stored.id;
  state.workbook = false;
  state.headerRow = null;
  state.chosen = null;
  $("api").value = option.value;
  apiChanged();
  $("file-name").textContent = stored.name + " (" + stored.size_text + ") is ready: " + option.textContent.trim() + ".";
  $("to-columns").disabled = false;
  await loadColumns(true);
  show("step-columns");
}

function when(iso) {
  return (iso || "").replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC");
}

async function forgetRun(r) {
  if (!window.confirm("Forget " + r.file + ": the uploaded file, its reports and its runs on this page? "
    + "The journal keeps which rows were confirmed.")) return;
  const done = await call("/api/runs/" + r.id + "/forget", { json: {} });
  say("");
  if (done.file_id && done.file_id === state.file) startOver(false);  // the file on show is gone
  $("file-name").textContent = "Forgot " + done.file + " (" + done.forgotten + " " + (done.forgotten === 1 ? "run" : "runs") + ").";
  if (state.run === r.id) hideSteps("step-report");
  loadRuns();
}

function startOver(focus) {
  state.file = null;
  state.preview = null;
  state.headerRow = null;
  state.chosen = null;
  hideSteps("step-columns", "step-preview", "step-upload", "step-report");
  $("file-input").value = "";
  $("file-name").textContent = "";
  $("to-columns").disabled = true;
  if (focus) $("file-input").focus();
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
    const files = ev.dataTransfer.files;
    if (!files[0]) return;
    try { $("file-input").files = files; } catch (e) { /* an old browser: the name below still says it */ }
    sendFile(files[0]);
  });
  apiChanged();
  callsListingChanged();
  $("calls-listing").addEventListener("change", callsListingChanged);
  $("calls-list").addEventListener("click", () => quietly(startCalls("list")));
  $("calls-watch").addEventListener("click", () => quietly(startCalls("watch")));
  $("calls-lookups").addEventListener("click", () => quietly(startCalls("lookups")));
  $("calls-make-file").addEventListener("click", () => quietly(makeActionFile()));
  $("calls-stop").addEventListener("click", () => quietly(call("/api/calls/" + state.calls + "/cancel", { json: {} })));
  $("api").addEventListener("change", () => { apiChanged(); state.chosen = null; if (state.file) loadColumns(!$("step-columns").hidden); });
  $("base-url-input").addEventListener("change", apiChanged);
  $("refresh-token").addEventListener("change", () => { handToken().catch(() => {}); });
  $("sheet").addEventListener("change", () => { state.headerRow = null; state.chosen = null; loadColumns(!$("step-columns").hidden); });
  $("header-row").addEventListener("change", () => { state.headerRow = Number($("header-row").value); state.chosen = null; loadColumns(true); });
  $("token").addEventListener("change", () => { handToken().catch(() => {}); });
  $("show-rows").addEventListener("change", () => turnPage(0, $("show-rows").value));
  $("bulk-kind").addEventListener("change", bulkKind);
  $("bulk-column").addEventListener("change", () => { $("bulk-apply").disabled = true; $("bulk-result").textContent = ""; });
  for (const id of ["bulk-find", "bulk-value"]) $(id).addEventListener("input", () => { $("bulk-apply").disabled = true; });
  $("bulk-check").addEventListener("click", () => quietly(bulkCheck()));
  $("bulk-apply").addEventListener("click", () => quietly(bulkApply()));
  $("bulk-undo").addEventListener("click", () => quietly(bulkUndo()));
  $("to-columns").addEventListener("click", async () => {
    await handToken();
    await loadColumns(true);
    hideSteps("step-preview", "step-upload", "step-report");
    show("step-columns");
  });
  $("to-preview").addEventListener("click", () => quietly(runPreview()));
  $("back-columns").addEventListener("click", () => show("step-columns"));
  $("prev-page").addEventListener("click", () => turnPage(-1));
  $("next-page").addEventListener("click", () => turnPage(1));
  $("start-upload").addEventListener("click", () => {
    const option = $("api").selectedOptions[0];
    const valid = state.counts ? state.counts.valid : 0;
    if (option.dataset.once === "1" && !window.confirm("Send " + valid.toLocaleString() + " " + option.textContent.trim()
      + " request" + (valid === 1 ? "" : "s") + "? Each is done once: a row whose answer is lost is not sent again unless you ask.")) return;
    quietly(startRun("/api/preview/" + state.preview + "/upload"));
  });
  $("cancel").addEventListener("click", async () => {
    $("cancel").disabled = true;
    $("progress-text").textContent = "Cancelling: nothing more is sent; waiting for the answers in flight…";
    await call("/api/runs/" + state.run + "/cancel", { json: {} });
  });
  $("retry-failed").addEventListener("click", () => quietly(startRun("/api/runs/" + state.run + "/retry", { include_not_found: false })));
  $("retry-not-found").addEventListener("click", () => quietly(startRun("/api/runs/" + state.run + "/retry", { include_not_found: true })));
  $("retry-unknown").addEventListener("click", () => {
    const unknown = state.unknown || 0;
    if (!window.confirm("Send again the " + unknown.toLocaleString() + " row" + (unknown === 1 ? "" : "s")
      + " whose outcome is unknown? Their first request may have been done already: check each one first.")) return;
    quietly(startRun("/api/runs/" + state.run + "/retry", { include_unknown: true }));
  });
  $("start-over").addEventListener("click", () => startOver(true));
}

document.addEventListener("DOMContentLoaded", () => { begin().catch(() => {}); });

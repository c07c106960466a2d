/*
 * horde's live dashboard: polls the master's JSON API and renders it.
 *
 * Responsibility: the start/edit form, the stop and reset buttons, the header figures and
 * the tabs (statistics, charts, failures, exceptions, workers, logs, downloads). Every URL
 * is relative to the page (served at <base>/), so a --web-base-path prefix just works.
 * Everything the server sends is attacker-influenced (entry names, errors, hosts, worker
 * ids, log lines): it is rendered with textContent and createElement only, never as HTML.
 * Depends on uPlot (assets/vendor/uplot), loaded before this file.
 */
(function () {
  "use strict";

  const POLL_MS = 2000;
  const FETCH_TIMEOUT_MS = 5000;
  const EXCEPTIONS_EVERY = 5; // polls between exception fetches while the tab is hidden
  const ACTIVE = new Set(["spawning", "running"]);
  const IDLE = new Set(["ready", "stopped"]);
  const CHART_HEIGHT = 260;
  // Whole seconds and up: history points are at least a second apart.
  const TIME_INCREMENTS = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
  ];

  const $ = (id) => document.getElementById(id);

  const ui = {
    runState: null,
    formMode: null, // "start", "edit" or null (hidden)
    config: null,
    host: "",
    tab: "statistics",
    polls: 0,
    requestsSeq: 0,
    requestsShown: 0,
  };

  // --- HTTP --------------------------------------------------------------------------

  /** Fetch a relative URL; resolve to {ok, status, body} or throw on network errors. */
  async function request(url, options) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    try {
      const response = await fetch(url, {
        cache: "no-store",
        credentials: "same-origin",
        ...options,
        signal: controller.signal,
      });
      let body = null;
      const type = response.headers.get("Content-Type") || "";
      if (type.includes("json")) {
        body = await response.json();
      } else {
        body = await response.text();
      }
      return { ok: response.ok, status: response.status, body };
    } finally {
      clearTimeout(timer);
    }
  }

  /** GET a JSON document; throw unless it answers 2xx with an object. */
  async function getJSON(url) {
    const result = await request(url);
    if (!result.ok || result.body === null || typeof result.body !== "object") {
      throw new Error(`${url}: HTTP ${result.status}`);
    }
    return result.body;
  }

  // --- DOM helpers -------------------------------------------------------------------

  /** Append a cell holding ``text`` (as text, never HTML) to ``row``. */
  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  /** Replace the body rows of ``table``; show ``emptyText`` across all columns when none. */
  function fillTable(table, rows, emptyText) {
    const body = table.tBodies[0];
    if (rows.length === 0) {
      const row = document.createElement("tr");
      row.className = "empty";
      const td = cell(row, emptyText);
      td.colSpan = table.tHead.rows[0].cells.length;
      body.replaceChildren(row);
      return;
    }
    body.replaceChildren(...rows);
  }

  /** A number for a table: times keep decimals when small, large ones are rounded. */
  function num(value, digits) {
    if (typeof value !== "number" || !Number.isFinite(value)) return "";
    if (digits !== undefined) return value.toFixed(digits);
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    if (abs >= 100) return value.toFixed(0);
    if (abs >= 10) return value.toFixed(1);
    return value.toFixed(2);
  }

  function setBadge(id, count) {
    const badge = $(id);
    badge.hidden = !count;
    badge.textContent = count ? String(count) : "";
  }

  // --- header and state --------------------------------------------------------------

  function setHost(host) {
    if (typeof host !== "string") return;
    ui.host = host;
    $("host").textContent = host || "\u2013";
    $("host").title = host;
  }

  function renderHeader(report) {
    $("user-count").textContent = String(report.user_count ?? 0);
    $("worker-count").textContent = String(report.worker_count ?? 0);
    $("rps").textContent = num(report.current_rps ?? 0, 1);
    const ratio = typeof report.fail_ratio === "number" ? report.fail_ratio * 100 : 0;
    $("fail-ratio").textContent = `${Number.isInteger(ratio) ? ratio : ratio.toFixed(1)}%`;
    $("fail-ratio").classList.toggle("bad", ratio > 0);
    if (typeof report.host === "string") setHost(report.host);
    onState(String(report.state || ""));
  }

  /** React to the run state: buttons, and the start form when a test can be started. */
  function onState(state) {
    $("state").textContent = state || "\u2013";
    document.body.dataset.state = state;
    const changed = state !== ui.runState;
    ui.runState = state;
    if (changed && IDLE.has(state)) showForm("start");
    if (changed && !IDLE.has(state) && ui.formMode === "start") hideForm();
    if (changed && !ACTIVE.has(state) && ui.formMode === "edit") hideForm();
    updateButtons();
  }

  function updateButtons() {
    const active = ACTIVE.has(ui.runState);
    $("stop-button").hidden = !active;
    $("edit-button").hidden = !active || ui.formMode !== null;
    $("new-button").hidden = !IDLE.has(ui.runState) || ui.formMode !== null;
  }

  // --- the swarm form ----------------------------------------------------------------

  function showForm(mode) {
    ui.formMode = mode;
    const panel = $("start-panel");
    panel.hidden = false;
    panel.dataset.mode = mode;
    $("start-title").textContent =
      mode === "edit" ? "Change the running load test" : "Start a new load test";
    $("swarm-button").textContent = mode === "edit" ? "Update" : "Start";
    for (const el of panel.querySelectorAll(".start-only")) {
      el.classList.toggle("off", mode === "edit");
    }
    $("form-error").hidden = true;
    onShapeChange();
    updateButtons();
  }

  function hideForm() {
    ui.formMode = null;
    $("start-panel").hidden = true;
    updateButtons();
  }

  function formError(message) {
    const el = $("form-error");
    el.textContent = message;
    el.hidden = false;
  }

  /** The form as Locust's /swarm fields; classes are sent only when some are unticked. */
  function swarmFields(form) {
    const fields = new URLSearchParams();
    const value = (name) => String(form.elements.namedItem(name).value || "").trim();
    const shape = ui.formMode === "start" && !$("shape-field").hidden ? value("shape_class") : "";
    if (!shape) {
      fields.set("user_count", value("user_count"));
      fields.set("spawn_rate", value("spawn_rate"));
    }
    if (ui.formMode === "edit") return fields;
    if (value("host")) fields.set("host", value("host"));
    if (value("run_time")) fields.set("run_time", value("run_time"));
    if (value("thresholds")) fields.set("thresholds", value("thresholds"));
    const boxes = [...form.querySelectorAll("input[name=user_classes]")];
    const ticked = boxes.filter((box) => box.checked).map((box) => box.value);
    if (boxes.length && ticked.length === 0) throw new Error("Tick at least one user class.");
    if (ticked.length < boxes.length) {
      for (const name of ticked) fields.append("user_classes", name);
    }
    if (shape) fields.set("shape_class", shape);
    for (const input of form.querySelectorAll("[data-script-option]")) {
      const text = input.type === "checkbox" ? String(input.checked) : String(input.value).trim();
      if (input.dataset.secret === "true" && !text) continue; // empty: keep the master's value
      fields.set(input.name, text);
    }
    return fields;
  }

  /** One input per option the script added (Locust's init_command_line_parser). */
  function renderScriptOptions(options) {
    const entries = Object.entries(options || {});
    $("script-option-list").replaceChildren(
      ...entries.map(([name, option]) => {
        const label = document.createElement("label");
        label.className = "field";
        const caption = document.createElement("span");
        caption.textContent = option.help ? `${name}: ${option.help}` : name;
        let input;
        if (Array.isArray(option.choices)) {
          input = document.createElement("select");
          for (const choice of option.choices) {
            const item = document.createElement("option");
            item.value = String(choice);
            item.textContent = String(choice);
            input.appendChild(item);
          }
          input.value = String(option.value);
        } else {
          input = document.createElement("input");
          if (option.kind === "bool") {
            input.type = "checkbox";
            input.checked = Boolean(option.value);
          } else {
            input.type = option.is_secret ? "password" : "text";
            input.value = option.value === null || option.value === undefined ? "" : String(option.value);
            if (option.is_secret) input.placeholder = "unchanged";
          }
        }
        input.name = name;
        input.dataset.scriptOption = "true";
        input.dataset.secret = String(Boolean(option.is_secret));
        label.append(caption, input);
        return label;
      }),
    );
    $("script-options").hidden = entries.length === 0;
  }

  /** A load shape drives users and rate itself, so their inputs are off while one is chosen. */
  function onShapeChange() {
    const form = $("swarm-form");
    const shaped = ui.formMode === "start" && Boolean($("shape-select").value);
    for (const name of ["user_count", "spawn_rate"]) {
      form.elements.namedItem(name).disabled = shaped;
    }
  }

  async function submitSwarm(event) {
    event.preventDefault();
    const form = event.currentTarget;
    let fields;
    try {
      fields = swarmFields(form);
    } catch (error) {
      formError(error.message);
      return;
    }
    const button = $("swarm-button");
    button.disabled = true;
    try {
      const result = await request("swarm", { method: "POST", body: fields });
      const body = result.body && typeof result.body === "object" ? result.body : {};
      if (result.ok && body.success !== false) {
        if (typeof body.host === "string") setHost(body.host);
        hideForm();
        pollRequests();
        pollHistory();
      } else {
        formError(body.message || `The master answered HTTP ${result.status}.`);
      }
    } catch (error) {
      formError(`Could not reach the master: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async function post(url) {
    try {
      await request(url, { method: "POST" });
    } catch (error) {
      showConnection(false);
    }
    pollRequests();
    pollHistory();
  }

  /** Fill the form's defaults and choices from GET ui-config (once). */
  function applyConfig(config) {
    ui.config = config;
    const form = $("swarm-form");
    const set = (name, value) => {
      if (value !== null && value !== undefined && value !== "") {
        form.elements.namedItem(name).value = String(value);
      }
    };
    set("user_count", config.users);
    set("spawn_rate", config.spawn_rate);
    set("host", config.host);
    set("run_time", config.run_time);
    if (!ui.host && typeof config.host === "string") setHost(config.host);
    $("version").textContent = config.version ? `v${config.version}` : "";
    $("locustfile").textContent = config.locustfile ? `Script: ${config.locustfile}` : "";
    $("history-csv").hidden = !config.history_csv;

    const classes = Array.isArray(config.user_classes) ? config.user_classes : [];
    const list = $("user-class-list");
    list.replaceChildren(
      ...classes.map((name) => {
        const label = document.createElement("label");
        label.className = "class-choice";
        const box = document.createElement("input");
        box.type = "checkbox";
        box.name = "user_classes";
        box.value = String(name);
        box.checked = true;
        label.append(box, document.createTextNode(` ${name}`));
        return label;
      }),
    );
    $("user-classes").hidden = classes.length === 0;
    renderScriptOptions(config.extra_options);

    const shapes = Array.isArray(config.shape_classes) ? config.shape_classes : [];
    const select = $("shape-select");
    // The script's only shape runs whatever the form says (as in Locust): no "none" then.
    if (!ui.noShape) ui.noShape = select.options[0];
    select.replaceChildren(...(shapes.length === 1 ? [] : [ui.noShape]));
    for (const name of shapes) {
      const option = document.createElement("option");
      option.value = String(name);
      option.textContent = String(name);
      select.appendChild(option);
    }
    $("shape-field").hidden = shapes.length === 0;
    onShapeChange();
  }

  // --- tables --------------------------------------------------------------------------

  function renderStats(rows) {
    const trs = rows.map((r, i) => {
      const tr = document.createElement("tr");
      if (i === rows.length - 1 && r.name === "Aggregated") tr.className = "total";
      cell(tr, r.method);
      cell(tr, r.name, "name");
      cell(tr, num(r.num_requests), "num");
      cell(tr, num(r.num_failures), r.num_failures ? "num bad" : "num");
      cell(tr, num(r.median_response_time), "num");
      cell(tr, num(r["response_time_percentile_0.95"]), "num");
      cell(tr, num(r["response_time_percentile_0.99"]), "num");
      cell(tr, num(r.avg_response_time), "num");
      cell(tr, num(r.min_response_time), "num");
      cell(tr, num(r.max_response_time), "num");
      cell(tr, num(r.avg_content_length, 0), "num");
      cell(tr, num(r.current_rps, 1), "num");
      cell(tr, num(r.current_fail_per_sec, 1), "num");
      return tr;
    });
    fillTable($("stats-table"), trs, "No requests yet.");
  }

  function renderFailures(errors) {
    const trs = errors.map((e) => {
      const tr = document.createElement("tr");
      cell(tr, num(e.occurrences), "num");
      cell(tr, e.method);
      cell(tr, e.name, "name");
      cell(tr, e.error, "message");
      return tr;
    });
    fillTable($("failures-table"), trs, "No failures.");
    setBadge("failures-count", errors.length);
  }

  function renderWorkers(workers) {
    const trs = workers.map((w) => {
      const tr = document.createElement("tr");
      tr.dataset.worker = String(w.id);
      if (w.state === "missing") tr.classList.add("missing");
      cell(tr, w.id, "name");
      cell(tr, w.state, "state");
      cell(tr, num(w.user_count), "num");
      cell(tr, num(w.cpu_usage, 1), w.cpu_usage > 90 ? "num bad" : "num");
      const mib = typeof w.memory_usage === "number" ? w.memory_usage / 1048576 : null;
      cell(tr, num(mib, 1), "num");
      const lag = typeof w.loop_lag === "number" ? w.loop_lag * 1000 : null;
      cell(tr, num(lag, 1), "num");
      cell(tr, num(w.requests), "num");
      return tr;
    });
    fillTable($("workers-table"), trs, "No workers connected.");
  }

  function renderExceptions(exceptions) {
    const trs = exceptions.map((e) => {
      const tr = document.createElement("tr");
      cell(tr, num(e.count), "num");
      cell(tr, e.msg, "message");
      const td = cell(tr, "");
      const pre = document.createElement("pre");
      pre.textContent = String(e.traceback ?? "");
      td.appendChild(pre);
      cell(tr, e.nodes);
      return tr;
    });
    fillTable($("exceptions-table"), trs, "No exceptions.");
    setBadge("exceptions-count", exceptions.length);
  }

  function logBlock(title, lines) {
    const section = document.createElement("section");
    section.className = "log";
    const heading = document.createElement("h3");
    heading.textContent = title;
    const pre = document.createElement("pre");
    pre.textContent = Array.isArray(lines) ? lines.join("\n") : "";
    section.append(heading, pre);
    return section;
  }

  function renderLogs(logs) {
    const blocks = [logBlock("Master", logs.master)];
    const workers = logs.workers && typeof logs.workers === "object" ? logs.workers : {};
    for (const id of Object.keys(workers).sort()) {
      blocks.push(logBlock(`Worker ${id}`, workers[id]));
    }
    $("logs").replaceChildren(...blocks);
  }

  // --- charts --------------------------------------------------------------------------

  function chartWidth() {
    const main = document.querySelector("main");
    return Math.max(320, main.clientWidth - 32);
  }

  /** The value a legend shows: the hovered point's, or the latest one when not hovering. */
  function legendValue(u, value, seriesIdx, idx) {
    if (idx === null || idx === undefined) {
      const column = u.data[seriesIdx];
      value = column.length ? column[column.length - 1] : null;
    }
    return value === null || value === undefined ? null : value;
  }

  function makeChart(id, title, series) {
    const opts = {
      title,
      width: chartWidth(),
      height: CHART_HEIGHT,
      scales: { x: { time: true } },
      series: [
        {
          value: (u, v, si, idx) => {
            const t = legendValue(u, v, si, idx);
            return t === null ? "\u2013" : new Date(t * 1000).toLocaleTimeString();
          },
        },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          width: 2,
          value: (u, v, si, idx) => {
            const shown = legendValue(u, v, si, idx);
            return shown === null ? "\u2013" : shown.toFixed(s.digits);
          },
        })),
      ],
      axes: [{ incrs: TIME_INCREMENTS }, { label: series[0].unit, size: 60 }],
      legend: { live: true },
    };
    return new uPlot(opts, [[], ...series.map(() => [])], $(id));
  }

  function makeCharts() {
    if (typeof uPlot !== "function") return {};
    return {
      rps: makeChart("chart-rps", "Total requests per second", [
        { label: "RPS", stroke: "#2e7d32", unit: "per second", digits: 1 },
        { label: "Failures/s", stroke: "#c62828", unit: "per second", digits: 1 },
      ]),
      responseTimes: makeChart("chart-response-times", "Response times (ms)", [
        { label: "50th percentile", stroke: "#1565c0", unit: "ms", digits: 1 },
        { label: "95th percentile", stroke: "#ef6c00", unit: "ms", digits: 1 },
      ]),
      users: makeChart("chart-users", "Number of users", [
        { label: "Users", stroke: "#6a1b9a", unit: "users", digits: 0 },
      ]),
    };
  }

  const charts = makeCharts();
  window.hordeCharts = charts;

  function renderHistory(points) {
    if (!charts.rps) return;
    const column = (key) => points.map((p) => (typeof p[key] === "number" ? p[key] : null));
    const time = column("time");
    charts.rps.setData([time, column("current_rps"), column("current_fail_per_sec")]);
    charts.responseTimes.setData([
      time,
      column("response_time_percentile_50"),
      column("response_time_percentile_95"),
    ]);
    charts.users.setData([time, column("user_count")]);
  }

  function resizeCharts() {
    const width = chartWidth();
    for (const chart of Object.values(charts)) {
      if (chart.width !== width) chart.setSize({ width, height: CHART_HEIGHT });
    }
  }

  // --- tabs ----------------------------------------------------------------------------

  function setTab(name) {
    const tabs = [...document.querySelectorAll(".tab")];
    if (!tabs.some((tab) => tab.dataset.tab === name)) name = "statistics";
    ui.tab = name;
    for (const tab of tabs) {
      const on = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      $(`tab-${tab.dataset.tab}`).hidden = !on;
    }
    if (name === "charts") resizeCharts();
    if (name === "exceptions") pollExceptions();
    if (name === "logs") pollLogs();
  }

  // --- polling -------------------------------------------------------------------------

  function showConnection(ok) {
    $("connection").hidden = ok;
    document.body.classList.toggle("offline", !ok);
  }

  async function pollRequests() {
    const seq = ++ui.requestsSeq;
    try {
      const report = await getJSON("stats/requests");
      if (seq < ui.requestsShown) return; // a later answer was already shown
      ui.requestsShown = seq;
      showConnection(true);
      renderHeader(report);
      renderStats(Array.isArray(report.stats) ? report.stats : []);
      renderFailures(Array.isArray(report.errors) ? report.errors : []);
      renderWorkers(Array.isArray(report.workers) ? report.workers : []);
    } catch (error) {
      showConnection(false);
    }
  }

  /** The thresholds panel: shown for a run with thresholds or a saturated generator. */
  function renderThresholds(body) {
    const results = Array.isArray(body.thresholds) ? body.thresholds : [];
    const note = body.generator_note || "";
    $("thresholds-panel").hidden = results.length === 0 && !note;
    $("generator-note").hidden = !note;
    $("generator-note").textContent = note ? `Warning: ${note}.` : "";
    const verdict = body.passed ? "passed" : "failed";
    $("thresholds-verdict").textContent = body.final ? verdict : `${verdict} so far`;
    fillTable($("thresholds-table"), results.map((r) => {
      const row = document.createElement("tr");
      cell(row, r.threshold, "name");
      const value = r.value === null ? "no data" : num(r.value) + (r.unit ? ` ${r.unit}` : "");
      cell(row, value, "num");
      cell(row, r.ok ? "pass" : `FAIL after ${r.first_failed_after} s`, r.ok ? "" : "bad");
      return row;
    }), "No thresholds.");
  }

  async function pollThresholds() {
    try {
      renderThresholds(await getJSON("stats/thresholds"));
    } catch (error) {
      // Shown again on the next poll.
    }
  }

  async function pollHistory() {
    try {
      const body = await getJSON("stats/history");
      renderHistory(Array.isArray(body.history) ? body.history : []);
    } catch (error) {
      // The charts keep their last data; stats/requests reports the lost connection.
    }
  }

  async function pollExceptions() {
    try {
      const body = await getJSON("exceptions");
      renderExceptions(Array.isArray(body.exceptions) ? body.exceptions : []);
    } catch (error) {
      // Shown again on the next poll.
    }
  }

  async function pollLogs() {
    try {
      renderLogs(await getJSON("logs"));
    } catch (error) {
      // Shown again on the next poll.
    }
  }

  async function loadConfig() {
    try {
      applyConfig(await getJSON("ui-config"));
    } catch (error) {
      // Retried on the next poll.
    }
  }

  async function poll() {
    ui.polls += 1;
    const jobs = [pollRequests(), pollHistory(), pollThresholds()];
    if (!ui.config) jobs.push(loadConfig());
    if (ui.tab === "exceptions" || ui.polls % EXCEPTIONS_EVERY === 1) jobs.push(pollExceptions());
    if (ui.tab === "logs") jobs.push(pollLogs());
    await Promise.allSettled(jobs);
    setTimeout(poll, POLL_MS);
  }

  // --- wiring --------------------------------------------------------------------------

  function start() {
    $("swarm-form").addEventListener("submit", submitSwarm);
    $("shape-select").addEventListener("change", onShapeChange);
    $("stop-button").addEventListener("click", () => post("stop"));
    $("reset-button").addEventListener("click", () => post("stats/reset"));
    $("edit-button").addEventListener("click", () => showForm("edit"));
    $("new-button").addEventListener("click", () => showForm("start"));
    $("cancel-button").addEventListener("click", hideForm);
    for (const tab of document.querySelectorAll(".tab")) {
      tab.addEventListener("click", () => {
        history.replaceState(null, "", `#${tab.dataset.tab}`);
        setTab(tab.dataset.tab);
      });
    }
    window.addEventListener("resize", resizeCharts);
    setTab(location.hash.slice(1) || "statistics");
    poll();
  }

  start();
})();

// The dashboard's behaviour: filters, visibility, sorting. Every number was computed by
// analysis/dashboard.py; this script only picks which of the embedded pieces to show.
"use strict";
const DATA = JSON.parse(document.getElementById("dashboard-data").textContent);
const FACETS = ["backbone", "task", "size", "method"];
const FACET_NAMES = {backbone: "Backbone", task: "Task", size: "Train size", method: "Method"};
const STATUSES = ["ok", "failed", "missing"];
// per-point facets of a trace (meta.<key>[i]); traces without them are one (backbone, method)
const POINT_FACETS = {methods: "method", sizes: "size"};
const state = {status: new Set(STATUSES), paretoX: "trainable_percent"};
const sortState = new Map();  // table id -> {key, dir}
let renders = 0;

function readHash() {
  for (const facet of FACETS) state[facet] = new Set(DATA.facets[facet].map(option => option.value));
  const params = new URLSearchParams(location.hash.slice(1));
  for (const facet of [...FACETS, "status"]) {
    if (params.has(facet)) state[facet] = new Set(params.get(facet).split(",").filter(Boolean));
  }
  if (DATA.pareto_axes.some(axis => axis.value === params.get("x"))) state.paretoX = params.get("x");
}

function writeHash() {
  const params = new URLSearchParams();
  for (const facet of FACETS) {
    if (state[facet].size !== DATA.facets[facet].length) params.set(facet, [...state[facet]].join(","));
  }
  if (state.status.size !== STATUSES.length) params.set("status", [...state.status].join(","));
  if (state.paretoX !== DATA.pareto_axes[0].value) params.set("x", state.paretoX);
  history.replaceState(null, "", "#" + params.toString());
}

function passes(item) {
  const free = value => value === undefined || value === null;  // an item without this facet
  return FACETS.every(facet => free(item[facet]) || state[facet].has(String(item[facet])));
}

function sliceTrace(trace) {
  const meta = trace.meta || {};
  const per = Object.entries(POINT_FACETS).filter(([key]) => Array.isArray(meta[key]));
  if (!per.length) return trace;
  const keep = meta[per[0][0]].map((_, i) => per.every(([key, facet]) => state[facet].has(String(meta[key][i]))));
  const pick = values => (Array.isArray(values) ? values.filter((_, i) => keep[i]) : values);
  const sliced = {...trace, x: pick(trace.x), y: pick(trace.y), customdata: pick(trace.customdata)};
  if (trace.marker) sliced.marker = {...trace.marker, symbol: pick(trace.marker.symbol)};
  for (const bar of ["error_x", "error_y"]) {
    if (trace[bar] && trace[bar].array) sliced[bar] = {...trace[bar], array: pick(trace[bar].array)};
  }
  return sliced;
}

async function drawPlots(boxId, panels) {
  const box = document.getElementById(boxId);
  for (const plot of box.querySelectorAll(".js-plotly-plot")) Plotly.purge(plot);
  box.replaceChildren();
  const drawing = [];
  for (const panel of panels) {
    const figure = JSON.parse(JSON.stringify(panel.figure));  // plotly mutates what it is given
    figure.layout.template = DATA.template;  // shared by every figure, stored once
    const traces = figure.data.filter(trace => passes(trace.meta || {})).map(sliceTrace)
      .filter(trace => !Array.isArray(trace.x) || trace.x.length);
    if (!traces.some(trace => trace.hoverinfo !== "skip")) continue;  // a band alone is no plot
    if (panel.subplots) {  // horizontal bars: the height follows the bars one subplot shows
      const bars = traces.reduce((sum, trace) => sum + trace.y.length, 0) / panel.subplots;
      figure.layout.height = 150 + 24 * bars;
    }
    const div = document.createElement("div");
    div.className = "plot";
    box.appendChild(div);
    drawing.push(Plotly.newPlot(div, traces, figure.layout, {displaylogo: false, responsive: true}));
  }
  if (!drawing.length) box.innerHTML = '<p class="empty">Nothing to show for these filters.</p>';
  await Promise.all(drawing);
}

function paretoPanels() {
  const groups = new Map();
  for (const panel of DATA.pareto) groups.set(panel.group, [...(groups.get(panel.group) || []), panel]);
  const shown = [];
  for (const panels of groups.values()) {
    const average = panels.find(panel => panel.kind === "avg");
    if (!state.size.has(average.size)) continue;
    if (average.tasks.every(task => state.task.has(task))) shown.push(average);
    else shown.push(...panels.filter(panel => panel.kind === "task" && state.task.has(panel.tasks[0])));
  }
  return shown.map(onParetoAxis);
}

function onParetoAxis(panel) {
  // every point carries its value of each axis (meta.x, from dashboard.py); null: not recorded
  const axis = DATA.pareto_axes.find(option => option.value === state.paretoX);
  const figure = JSON.parse(JSON.stringify(panel.figure));
  for (const trace of figure.data) trace.x = [trace.meta.x[axis.value]];
  figure.layout.xaxis = {...figure.layout.xaxis, type: axis.type, title: {text: axis.label}};
  return {...panel, figure};
}

function curvePanels() {
  return DATA.curves.filter(panel => state.task.has(panel.tasks[0]) && panel.sizes.some(size => state.size.has(size)));
}

function learningPanels() {
  return DATA.learning.filter(panel => state.task.has(panel.tasks[0]) && state.size.has(panel.size));
}

function compare(key, dir) {
  return (a, b) => {
    const x = a.sort[key], y = b.sort[key];
    if (x === null || x === undefined) return (y === null || y === undefined) ? 0 : 1;  // blanks last
    if (y === null || y === undefined) return -1;
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return dir * order;
  };
}

function buildTable(id, view, rows, redraw) {
  // an Avg column's header names every task it averages (dashboard.py), shown or hidden
  const columns = view.columns.filter(column => !column.task || state.task.has(column.task));
  const sort = sortState.get(id);
  if (sort) rows = [...rows].sort(compare(sort.key, sort.dir));
  const table = document.createElement("table");
  table.id = id;
  const head = table.createTHead().insertRow();
  for (const column of columns) {
    const th = document.createElement("th");
    th.textContent = column.header;
    th.dataset.key = column.key;
    if (sort && sort.key === column.key) th.className = sort.dir > 0 ? "sorted-asc" : "sorted-desc";
    th.addEventListener("click", () => {
      const again = sort && sort.key === column.key;
      sortState.set(id, {key: column.key, dir: again ? -sort.dir : 1});
      redraw();
    });
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    if (row.status) tr.className = row.status;
    for (const column of columns) {
      const td = tr.insertCell();
      td.textContent = row.cells[column.key] ?? "";
      if (column.key === "error") { td.className = "error"; td.title = td.textContent; }
    }
  }
  return table;
}

function renderTables() {
  const box = document.getElementById("table-views");
  box.replaceChildren();
  DATA.tables.forEach((view, index) => {
    const rows = view.rows.filter(passes);
    const visibleTasks = view.columns.filter(column => column.task && state.task.has(column.task));
    if (!rows.length || !visibleTasks.length || !state.size.has(view.size)) return;
    const heading = document.createElement("h3");
    heading.textContent = view.title;
    const notes = document.createElement("ul");
    notes.className = "table-notes";
    for (const note of view.notes) notes.appendChild(document.createElement("li")).textContent = note;
    box.append(heading, buildTable(`table-${index}`, view, rows, renderTables), notes);
  });
  if (!box.children.length) box.innerHTML = '<p class="empty">No table for these filters.</p>';
}

function renderVerdicts() {
  const view = DATA.verdicts;
  const box = document.getElementById("verdict-view");
  box.replaceChildren(buildTable("verdict-rows", view, view.rows.filter(passes), renderVerdicts));
  const notes = box.appendChild(document.createElement("ul"));
  notes.className = "table-notes";
  for (const note of view.notes) notes.appendChild(document.createElement("li")).textContent = note;
}

function renderEfficiencyTable() {
  const box = document.getElementById("efficiency-table");
  const view = DATA.efficiency.table;
  box.replaceChildren(buildTable("efficiency-rows", view, view.rows.filter(passes), renderEfficiencyTable));
  const notes = box.appendChild(document.createElement("ul"));
  notes.className = "table-notes";
  for (const note of view.notes) notes.appendChild(document.createElement("li")).textContent = note;
}

function renderRuns() {
  const view = DATA.runs;
  const rows = view.rows.filter(row => passes(row) && state.status.has(row.status));
  document.getElementById("runs-view").replaceChildren(buildTable("runs-table", view, rows, renderRuns));
  const counts = STATUSES.map(status => `${rows.filter(row => row.status === status).length} ${status}`);
  document.getElementById("runs-count").textContent =
    `${rows.length} of ${view.rows.length} runs shown (${counts.join(", ")})`;
}

function checkboxGroup(name, legend, options, selected, onChange) {
  const fieldset = document.createElement("fieldset");
  fieldset.appendChild(document.createElement("legend")).textContent = legend;
  const boxes = options.map(option => {
    const label = fieldset.appendChild(document.createElement("label"));
    const box = label.appendChild(document.createElement("input"));
    box.type = "checkbox";
    box.id = `filter-${name}-${option.value}`;
    box.checked = selected.has(option.value);
    box.addEventListener("change", () => {
      if (box.checked) selected.add(option.value); else selected.delete(option.value);
      onChange();
    });
    label.append(" " + option.label);
    return box;
  });
  for (const [text, on] of [["all", true], ["none", false]]) {
    const button = fieldset.appendChild(document.createElement("button"));
    button.type = "button";
    button.textContent = text;
    button.addEventListener("click", () => {
      boxes.forEach((box, i) => { box.checked = on; if (on) selected.add(options[i].value); });
      if (!on) selected.clear();
      onChange();
    });
  }
  return fieldset;
}

async function renderAll() {
  writeHash();
  renderTables();
  renderVerdicts();
  renderRuns();
  const plots = [drawPlots("pareto-plots", paretoPanels()), drawPlots("curve-plots", curvePanels()),
                 drawPlots("learning-plots", learningPanels())];
  if (!DATA.efficiency.absent) {
    renderEfficiencyTable();
    plots.push(drawPlots("efficiency-plot", [{figure: DATA.efficiency.figure, subplots: DATA.efficiency.subplots}]));
  }
  await Promise.all(plots);
  document.body.dataset.renders = String(++renders);  // tests wait for this after a change
}

async function loadPlotly() {
  // plotly.min.js, gzip-compressed and base64-encoded by dashboard.py (the page must stay < 5 MB)
  const bytes = Uint8Array.from(atob(document.getElementById("plotly-gz").textContent.trim()), c => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  const script = document.createElement("script");
  script.textContent = await new Response(stream).text();
  document.head.appendChild(script);
}

async function main() {
  readHash();
  document.getElementById("sources").textContent =
    `Profile ${DATA.profile}: ${DATA.runs.rows.filter(row => row.status !== "missing").length} run records, ` +
    `from ${DATA.sources.join(", ")}. Scores are test scores ×100.`;
  const form = document.getElementById("filters");
  for (const facet of FACETS) {
    form.appendChild(checkboxGroup(facet, FACET_NAMES[facet], DATA.facets[facet], state[facet], renderAll));
  }
  document.getElementById("status-filter").appendChild(checkboxGroup(
    "status", "Status", STATUSES.map(value => ({value, label: value})), state.status, renderAll));
  const axisSelect = document.getElementById("pareto-x");
  for (const axis of DATA.pareto_axes) axisSelect.add(new Option(axis.label, axis.value, false, axis.value === state.paretoX));
  axisSelect.addEventListener("change", () => { state.paretoX = axisSelect.value; renderAll(); });
  const efficiency = document.getElementById("efficiency-view");
  if (DATA.efficiency.absent) {
    efficiency.innerHTML = '<p class="empty"></p>';
    efficiency.firstChild.textContent = DATA.efficiency.absent;
  } else efficiency.innerHTML = '<div id="efficiency-plot"></div><div id="efficiency-table"></div>';
  for (const link of document.querySelectorAll("nav a")) {
    link.addEventListener("click", event => {  // the hash holds the filters, so scroll instead
      event.preventDefault();
      document.getElementById(link.dataset.view).scrollIntoView();
    });
  }
  await loadPlotly();
  document.getElementById("loading").remove();
  await renderAll();
}

main().catch(error => {
  const box = document.getElementById("loading") ||
    document.querySelector("header").appendChild(document.createElement("p"));
  box.className = "empty";
  box.textContent = `The dashboard failed: ${error}`;
  document.body.dataset.failed = "true";
  console.error(error);
});

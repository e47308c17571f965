/* gl-ml-tracking: the experiment page's charts panel (_experiment_charts.html).
 *
 * Runs: the rows checked in the runs table, or every run on the page. Each
 * row gets a colour swatch (GLMLChart.palette by row position) and every
 * chart draws that run in that colour.
 *
 * Curves: one GLMLChart per chosen metric, fed by curves.json (downsampled on
 * the server, refetched on zoom), with a legend marking the best run by the
 * metric's direction (GLMLDirection: switchable, remembered). Scatter: any
 * parameter or metric against a metric. Parallel coordinates: the parameters
 * that differ between the runs, then a metric. Both from run-values.json.
 */
(function () {
  'use strict';

  var MAX_RUNS = 100;
  var DEFAULT_METRICS = 2;

  function all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function el(name, className, parent, text) {
    var node = document.createElement(name);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function getJson(url) {
    return fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}}).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.message || ('HTTP ' + r.status)); }
        return body;
      });
    });
  }
  function store(key, value) {
    try {
      if (value === undefined) { return JSON.parse(window.localStorage.getItem(key) || 'null'); }
      window.localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { return null; }
    return null;
  }

  function init() {
    var panel = document.querySelector('[data-charts-panel]');
    if (!panel || !window.GLMLChart || !window.GLMLDirection) { return; }
    var Chart = window.GLMLChart, Direction = window.GLMLDirection, palette = Chart.palette;
    var prefsKey = 'glml-charts:' + window.location.pathname;
    var prefs = store(prefsKey) || {};
    var pageRuns = all('[data-testid="runs-table"] tbody tr[data-run-iid]').map(function (tr, i) {
      var link = tr.querySelector('[data-testid="run-link"]');
      return {iid: +tr.getAttribute('data-run-iid'), name: link ? link.textContent.trim() : 'Run', row: tr,
              color: palette[i % palette.length]};
    });
    var byIid = {};
    pageRuns.forEach(function (run) {
      byIid[run.iid] = run;
      var cell = run.row.querySelector('.glml-run-cell');
      if (cell && !cell.querySelector('[data-testid="run-swatch"]')) {
        var swatch = el('span', 'glml-swatch', null);
        swatch.setAttribute('data-testid', 'run-swatch');
        swatch.setAttribute('data-color', run.color);
        swatch.setAttribute('aria-hidden', 'true');
        swatch.style.background = run.color;
        cell.insertBefore(swatch, cell.firstChild);
      }
    });
    var state = {values: null, charts: [], view: prefs.view || 'curves'};
    var scope = panel.querySelector('[data-charts-scope]');

    function chosenRuns() {
      var checked = all('[data-run-select]').filter(function (b) { return b.checked; })
        .map(function (b) { return byIid[+b.value]; }).filter(Boolean);
      var runs = (checked.length ? checked : pageRuns).slice(0, MAX_RUNS);
      scope.textContent = checked.length ? 'Showing the ' + runs.length + ' selected run' + (runs.length === 1 ? '' : 's') + '.'
        : 'Showing the ' + runs.length + ' run' + (runs.length === 1 ? '' : 's') + ' on this page; select runs in the table to chart only those.';
      panel.setAttribute('data-run-count', String(runs.length));
      return runs;
    }
    function valueOf(iid, kind, key) {
      var run = state.values && state.values.byIid[iid];
      var v = run ? run[kind][key] : undefined;
      if (kind === 'params' && v !== undefined && v !== null && v !== '' && isFinite(+v)) { return +v; }
      return v === undefined ? null : v;
    }
    function direction(key) { return Direction.get(key, (state.values && state.values.directions[key]) || 'max'); }
    function bestRun(runs, key) {
      var best = Direction.best(runs.map(function (r) { return valueOf(r.iid, 'metrics', key); }), direction(key));
      if (best === null) { return null; }
      return runs.filter(function (r) { return valueOf(r.iid, 'metrics', key) === best; })[0];
    }
    function directionButton(button, key) {
      button.textContent = (key ? key + ': ' : '') + Direction.label(direction(key));
      button.setAttribute('data-direction', direction(key));
      button.title = 'Click to switch which way is better for ' + key;
      button.onclick = function () { Direction.set(key, direction(key) === 'min' ? 'max' : 'min'); };
    }
    function savePrefs() { store(prefsKey, prefs); }

    // ------------------------------------------------------------ curves
    var picker = panel.querySelector('[data-metric-picker]');
    var curvesBox = panel.querySelector('[data-curves]');
    var logBox = panel.querySelector('[data-curves-log]');
    var smoothing = panel.querySelector('[data-curves-smoothing]');
    logBox.checked = !!prefs.log;

    function chosenMetrics() {
      return all('input[data-metric-choice]', picker).filter(function (b) { return b.checked; })
        .map(function (b) { return b.value; });
    }
    function buildPicker(metrics) {
      picker.textContent = '';
      var counts = {};
      state.values.runs.forEach(function (r) { Object.keys(r.metrics).forEach(function (k) { counts[k] = (counts[k] || 0) + 1; }); });
      var common = metrics.slice().sort(function (a, b) { return (counts[b] || 0) - (counts[a] || 0) || (a < b ? -1 : 1); });
      var wanted = (prefs.metrics || []).filter(function (k) { return metrics.indexOf(k) >= 0; });
      if (!wanted.length) { wanted = common.slice(0, DEFAULT_METRICS); }
      metrics.forEach(function (key) {
        var label = el('label', 'glml-check', picker);
        var box = el('input', '', label);
        box.type = 'checkbox';
        box.value = key;
        box.checked = wanted.indexOf(key) >= 0;
        box.setAttribute('data-metric-choice', key);
        label.appendChild(document.createTextNode(' ' + key));
        box.addEventListener('change', function () { prefs.metrics = chosenMetrics(); savePrefs(); drawCurves(); });
      });
    }

    function CurveChart(key) {
      var self = this;
      this.key = key;
      this.range = null;
      this.figure = el('figure', 'glml-chart-card glml-curve', curvesBox);
      this.figure.setAttribute('data-testid', 'curve-chart');
      this.figure.setAttribute('data-metric', key);
      var head = el('figcaption', 'glml-curve-head', this.figure);
      el('span', 'glml-strong', head, key);
      this.toggle = el('button', 'glml-btn glml-btn-sm glml-btn-link', head);
      this.toggle.type = 'button';
      this.toggle.setAttribute('data-testid', 'curve-direction');
      this.body = el('div', 'glml-chart', this.figure);
      this.note = el('div', 'glml-muted glml-small', this.figure);
      this.legend = el('div', 'glml-charts-legend', this.figure);
      this.legend.setAttribute('data-testid', 'curve-legend');
      this.chart = new Chart(this.body, {
        mode: 'line', xKind: 'step', height: 260, label: key, legend: false,
        onZoom: function (lo, hi) { self.range = [lo, hi]; self.load(); },
        onReset: function () { self.range = null; self.load(); }
      });
      this.chart.setOptions({log: logBox.checked, smoothing: +smoothing.value || 0});
    }
    CurveChart.prototype.load = function () {
      var self = this, runs = chosenRuns();
      var ticket = (this.ticket || 0) + 1;
      this.ticket = ticket;
      this.body.setAttribute('data-state', 'loading');
      var points = Math.max(50, Math.min(1000, Math.round((this.body.clientWidth || 400) - 60)));
      var url = panel.getAttribute('data-curves-url') + '?key=' + encodeURIComponent(this.key) + '&points=' + points +
        '&runs=' + runs.map(function (r) { return r.iid; }).join(',');
      if (this.range) { url += '&start=' + Math.floor(this.range[0]) + '&end=' + Math.ceil(this.range[1]); }
      getJson(url).then(function (body) {
        if (ticket !== self.ticket) { return; }
        var skipped = 0;
        self.series = body.runs.map(function (r) {
          skipped += r.nan + r.inf;
          var run = byIid[r.iid] || {color: palette[0], name: r.name};
          return {iid: r.iid, name: r.name + ' #' + r.iid, color: run.color,
                  points: r.points.map(function (p) { return {x: p[0], y: p[1]}; })};
        });
        self.chart.setSeries(self.series, !!self.range);
        self.body.setAttribute('data-series-count', String(self.series.length));
        self.note.textContent = skipped ? skipped + ' NaN or infinite value' + (skipped === 1 ? ' is' : 's are') + ' not drawn.' : '';
        self.drawLegend();
      }, function (error) {
        if (ticket === self.ticket) { self.chart.message('Could not load the chart: ' + error.message); }
      });
    };
    CurveChart.prototype.drawLegend = function () {
      var self = this;
      directionButton(this.toggle, this.key);
      this.legend.textContent = '';
      var best = bestRun(chosenRuns(), this.key);
      (this.series || []).forEach(function (s) {
        var item = el('span', 'glml-legend-item', self.legend);
        item.setAttribute('data-legend-iid', String(s.iid));
        item.setAttribute('data-color', s.color);
        var sw = el('span', 'glml-swatch', item);
        sw.style.background = s.color;
        item.appendChild(document.createTextNode(s.name + (s.points.length ? '' : ' (no data)')));
        if (best && best.iid === s.iid) {
          item.classList.add('glml-best-run');
          item.setAttribute('data-best', 'true');
          el('span', 'glml-best-mark', item, ' ★ best');
        }
      });
    };

    function drawCurves() {
      curvesBox.textContent = '';
      var metrics = chosenMetrics();
      state.charts = metrics.map(function (key) { return new CurveChart(key); });
      if (!metrics.length) { el('p', 'glml-muted', curvesBox, 'Choose metrics to chart.'); }
      state.charts.forEach(function (c) { c.load(); });
    }
    logBox.addEventListener('change', function () {
      prefs.log = logBox.checked; savePrefs();
      state.charts.forEach(function (c) { c.chart.setOptions({log: logBox.checked}); });
    });
    smoothing.addEventListener('input', function () {
      state.charts.forEach(function (c) { c.chart.setOptions({smoothing: +smoothing.value || 0}); });
    });

    // ------------------------------------------------------------ scatter and parallel coordinates
    var plotApi = window.GLMLPlots;
    var scatterX = panel.querySelector('[data-scatter-x]'), scatterY = panel.querySelector('[data-scatter-y]');
    var parallelMetric = panel.querySelector('[data-parallel-metric]');

    function fillSelect(select, options, chosen) {
      select.textContent = '';
      options.forEach(function (o) {
        var option = el('option', '', select, o.label);
        option.value = o.value;
        option.selected = o.value === chosen;
      });
    }
    function plotRuns(xKind, xKey, yKey) {
      return chosenRuns().map(function (r) {
        return {iid: r.iid, name: r.name, color: r.color, x: valueOf(r.iid, xKind, xKey), y: valueOf(r.iid, 'metrics', yKey)};
      });
    }
    function drawScatter() {
      if (!plotApi) { return; }
      var parts = scatterX.value.split(':'), kind = parts.shift(), key = parts.join(':');
      var y = scatterY.value;
      prefs.scatter = [scatterX.value, y]; savePrefs();
      directionButton(panel.querySelector('[data-scatter-direction]'), y);
      var best = bestRun(chosenRuns(), y);
      plotApi.scatter(panel.querySelector('[data-scatter]'), plotRuns(kind, key, y), {
        xLabel: key, yLabel: y, best: best ? best.iid : null, runUrl: panel.getAttribute('data-run-url')
      });
    }
    function variedParams() {
      var runs = chosenRuns();
      return state.values.params.filter(function (key) {
        var seen = {};
        runs.forEach(function (r) { seen[String(valueOf(r.iid, 'params', key))] = true; });
        return Object.keys(seen).length > 1;
      }).slice(0, 10);
    }
    function drawParallel() {
      if (!plotApi) { return; }
      var metric = parallelMetric.value;
      prefs.parallel = metric; savePrefs();
      directionButton(panel.querySelector('[data-parallel-direction]'), metric);
      var axes = variedParams().map(function (k) { return {kind: 'params', key: k}; });
      if (metric) { axes.push({kind: 'metrics', key: metric}); }
      var best = metric ? bestRun(chosenRuns(), metric) : null;
      plotApi.parallel(panel.querySelector('[data-parallel]'), chosenRuns().map(function (r) {
        var values = {};
        axes.forEach(function (a) { values[a.kind + ':' + a.key] = valueOf(r.iid, a.kind, a.key); });
        return {iid: r.iid, name: r.name, color: r.color, values: values};
      }), axes.map(function (a) { return {id: a.kind + ':' + a.key, label: a.key, metric: a.kind === 'metrics'}; }),
      {best: best ? best.iid : null, runUrl: panel.getAttribute('data-run-url')});
    }
    function buildSelects() {
      var v = state.values, saved = prefs.scatter || [];
      var xs = v.params.map(function (k) { return {value: 'params:' + k, label: 'param ' + k}; })
        .concat(v.metrics.map(function (k) { return {value: 'metrics:' + k, label: 'metric ' + k}; }));
      var ys = v.metrics.map(function (k) { return {value: k, label: k}; });
      var firstVaried = variedParams()[0];
      var primary = chosenMetrics()[0] || v.metrics[0];
      fillSelect(scatterX, xs, saved[0] || (firstVaried ? 'params:' + firstVaried : xs.length ? xs[0].value : ''));
      fillSelect(scatterY, ys, saved[1] || primary);
      fillSelect(parallelMetric, ys, prefs.parallel || primary);
    }
    scatterX.addEventListener('change', drawScatter);
    scatterY.addEventListener('change', drawScatter);
    parallelMetric.addEventListener('change', drawParallel);

    // ------------------------------------------------------------ views, selection, directions
    function show(view) {
      state.view = view;
      prefs.view = view; savePrefs();
      all('[data-view-tab]', panel).forEach(function (b) { b.setAttribute('aria-selected', String(b.getAttribute('data-view-tab') === view)); });
      all('[data-view]', panel).forEach(function (d) { d.hidden = d.getAttribute('data-view') !== view; });
      if (!state.values) { return; }
      if (view === 'curves') { drawCurves(); } else if (view === 'scatter') { drawScatter(); } else { drawParallel(); }
    }
    all('[data-view-tab]', panel).forEach(function (b) {
      b.addEventListener('click', function () { show(b.getAttribute('data-view-tab')); });
    });
    var selectionTimer = null;
    function selectionChanged() {
      window.clearTimeout(selectionTimer);
      selectionTimer = window.setTimeout(function () { show(state.view); }, 120);
    }
    all('[data-run-select], [data-select-all]').forEach(function (b) { b.addEventListener('change', selectionChanged); });
    Direction.onChange(function () {
      state.charts.forEach(function (c) { if (c.series) { c.drawLegend(); } });
      if (state.view === 'scatter') { drawScatter(); } else if (state.view === 'parallel') { drawParallel(); }
    });
    // The plots take their size from the panel's width only: a change of height (a phone's
    // toolbar, a full-page screenshot) must not redraw, and so replace, what is on screen.
    var resizeTimer = null, drawnWidth = panel.clientWidth;
    window.addEventListener('resize', function () {
      if (panel.clientWidth === drawnWidth) { return; }
      drawnWidth = panel.clientWidth;
      window.clearTimeout(resizeTimer);
      resizeTimer = window.setTimeout(function () {
        if (state.view === 'curves') { state.charts.forEach(function (c) { c.chart.redraw(); }); } else { show(state.view); }
      }, 200);
    });

    chosenRuns();
    getJson(panel.getAttribute('data-values-url') + '?runs=' + pageRuns.map(function (r) { return r.iid; }).join(','))
      .then(function (values) {
        values.byIid = {};
        values.runs.forEach(function (r) { values.byIid[r.iid] = r; });
        state.values = values;
        buildPicker(values.metrics);
        buildSelects();
        panel.setAttribute('data-ready', 'true');
        show(state.view);
      }, function (error) { scope.textContent = 'Could not load the runs\u2019 values: ' + error.message; });
  }

  document.addEventListener('DOMContentLoaded', init);
}());

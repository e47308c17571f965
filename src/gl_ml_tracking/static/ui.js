/* gl-ml-tracking pages: small progressive enhancements. Every page works
 * without this file (forms, links, <details> confirmations); with it you get
 * copy buttons, live column toggling, run selection, and the charts. */
(function () {
  'use strict';

  function all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function readJson(element, attribute) {
    try { return JSON.parse(element.getAttribute(attribute) || 'null'); } catch (e) { return null; }
  }

  // ---------------------------------------------------------------- copy buttons
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) { return navigator.clipboard.writeText(text); }
    return new Promise(function (resolve, reject) {
      var area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.className = 'glml-offscreen';
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error('copy failed')); }
    });
  }

  all('[data-copy]').forEach(function (button) {
    button.addEventListener('click', function () {
      var label = button.textContent;
      copyText(button.getAttribute('data-copy')).then(function () {
        button.textContent = 'Copied';
        button.setAttribute('data-copied', 'true');
      }, function () {
        button.textContent = 'Press Ctrl+C';
      });
      window.setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // ---------------------------------------------------------------- dropdowns: one open at a time
  document.addEventListener('click', function (event) {
    all('.glml details[open]').forEach(function (details) {
      if (!details.contains(event.target)) { details.removeAttribute('open'); }
    });
  });
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape') { all('.glml details[open]').forEach(function (d) { d.removeAttribute('open'); }); }
  });

  all('[data-autosubmit]').forEach(function (select) {
    select.addEventListener('change', function () { select.form.submit(); });
  });

  // ---------------------------------------------------------------- runs table
  function toggleColumn(id, shown) {
    all('[data-col]').forEach(function (cell) {
      if (cell.getAttribute('data-col') === id) { cell.classList.toggle('glml-hidden-col', !shown); }
    });
  }
  all('[data-col-toggle]').forEach(function (box) {
    box.addEventListener('change', function () { toggleColumn(box.getAttribute('data-col-toggle'), box.checked); });
  });
  all('[data-columns]').forEach(function (button) {
    button.addEventListener('click', function () {
      var on = button.getAttribute('data-columns') === 'all';
      all('[data-col-toggle]').forEach(function (box) {
        box.checked = on;
        toggleColumn(box.getAttribute('data-col-toggle'), on);
      });
    });
  });

  var compareButton = document.querySelector('[data-compare-button]');
  function updateCompare() {
    if (!compareButton) { return; }
    var n = all('[data-run-select]').filter(function (b) { return b.checked; }).length;
    compareButton.disabled = n < 2;
    compareButton.textContent = n ? 'Compare ' + n + ' runs' : 'Compare selected runs';
  }
  all('[data-select-all]').forEach(function (master) {
    master.addEventListener('change', function () {
      all('[data-run-select]').forEach(function (box) { box.checked = master.checked; });
      updateCompare();
    });
  });
  all('[data-run-select]').forEach(function (box) { box.addEventListener('change', updateCompare); });
  updateCompare();

  // ---------------------------------------------------------------- charts
  if (!window.GLMLChart) { return; }
  var Chart = window.GLMLChart;

  function controlsFor(element) {
    var card = element.closest('.glml-card');
    return card ? card.querySelector('[data-chart-controls]') : null;
  }

  function controlState(controls) {
    var state = {x: 'step', log: false, smoothing: 0, metric: null};
    if (!controls) { return state; }
    var checked = controls.querySelector('[data-control="x"]:checked');
    if (checked) { state.x = checked.value; }
    var log = controls.querySelector('[data-control="log"]');
    if (log) { state.log = log.checked; }
    var smoothing = controls.querySelector('[data-control="smoothing"]');
    if (smoothing) { state.smoothing = parseFloat(smoothing.value) || 0; }
    var metric = controls.querySelector('[data-control="metric"]');
    if (metric) { state.metric = metric.value; }
    return state;
  }

  function bucketsFor(element) {
    return Math.max(50, Math.min(1000, Math.round((element.clientWidth || 400) - 70)));
  }

  function fetchSeries(url, params) {
    var query = Object.keys(params).filter(function (k) { return params[k] !== null && params[k] !== undefined; })
      .map(function (k) { return encodeURIComponent(k) + '=' + encodeURIComponent(params[k]); }).join('&');
    return fetch(url + (url.indexOf('?') >= 0 ? '&' : '?') + query, {credentials: 'same-origin',
                                                                       headers: {Accept: 'application/json'}})
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { throw new Error(body.message || ('HTTP ' + response.status)); }
          return body;
        });
      });
  }

  function toPoints(body) {
    return (body.points || []).map(function (p) {
      return {x: p[0], y: p[1], min: p[2], max: p[3], count: p[4], xMin: p[6], xMax: p[7]};
    });
  }

  // A chart fed by chart-data URLs (one per series), refetched on zoom.
  function RemoteChart(element, sources, state) {
    var self = this;
    this.element = element;
    this.sources = sources; // [{name, url}]
    this.state = state;
    this.range = null;
    this.chart = new Chart(element, {
      mode: 'line', xKind: state.x, height: element.classList.contains('glml-chart-wide') ? 340 : 240,
      label: element.getAttribute('data-key') || 'metric chart',
      onZoom: function (lo, hi) { self.range = [lo, hi]; self.load(); },
      onReset: function () { self.range = null; self.load(); }
    });
    this.chart.setOptions({log: state.log, smoothing: state.smoothing});
  }

  RemoteChart.prototype.load = function () {
    var self = this, state = this.state;
    var ticket = (this.ticket || 0) + 1;
    this.ticket = ticket;
    this.element.setAttribute('data-state', 'loading');
    var params = {x: state.x, buckets: bucketsFor(this.element)};
    if (this.range) { params.start = Math.floor(this.range[0]); params.end = Math.ceil(this.range[1]); }
    Promise.all(this.sources.map(function (source) {
      var p = Object.assign({key: source.key || state.metric}, params);
      return fetchSeries(source.url, p).then(function (body) { return {name: source.name, body: body}; },
                                             function (error) { return {name: source.name, error: error}; });
    })).then(function (results) {
      if (ticket !== self.ticket) { return; }
      var failed = results.filter(function (r) { return r.error; });
      if (failed.length === results.length) {
        self.chart.message('Could not load the chart: ' + failed[0].error.message);
        return;
      }
      self.chart.xKind = state.x;
      var ok = results.filter(function (r) { return !r.error; });
      var sampled = ok.some(function (r) { return r.body.sampled; });
      self.element.setAttribute('data-sampled', String(sampled));
      self.chart.setSeries(ok.map(function (r, i) {
        return {name: r.name, color: Chart.palette[i % Chart.palette.length], points: toPoints(r.body)};
      }), !!self.range, sampled ? 'Long history: the band shows sampled values. Zoom in for exact minimum and maximum.' : '');
      self.element.setAttribute('data-buckets', String(results.reduce(function (n, r) {
        return n + (r.body ? r.body.points.length : 0);
      }, 0)));
    });
  };

  var remoteCharts = [];

  all('[data-chart="metric"]').forEach(function (element) {
    var state = controlState(controlsFor(element));
    var chart = new RemoteChart(element, [{name: element.getAttribute('data-key'), key: element.getAttribute('data-key'),
                                           url: element.getAttribute('data-url')}], state);
    remoteCharts.push(chart);
    chart.load();
  });

  all('[data-chart="compare"]').forEach(function (element) {
    var state = controlState(controlsFor(element));
    var runs = readJson(element, 'data-series') || [];
    var chart = new RemoteChart(element, runs.map(function (r) { return {name: r.name + ' #' + r.iid, url: r.url}; }),
                                state);
    remoteCharts.push(chart);
    chart.load();
  });

  all('[data-chart-controls]').forEach(function (controls) {
    var card = controls.closest('.glml-card');
    var mine = remoteCharts.filter(function (c) { return card && card.contains(c.element); });
    function apply(reload) {
      var state = controlState(controls);
      mine.forEach(function (c) {
        var changedAxis = c.state.x !== state.x || c.state.metric !== state.metric;
        c.state = state;
        if (changedAxis) { c.range = null; }
        c.chart.setOptions({log: state.log, smoothing: state.smoothing});
        if (reload || changedAxis) { c.load(); }
      });
    }
    all('[data-control]', controls).forEach(function (input) {
      input.addEventListener(input.type === 'range' ? 'input' : 'change', function () { apply(false); });
    });
  });

  all('[data-chart="runs"]').forEach(function (element) {
    var points = readJson(element, 'data-points') || [];
    var runUrl = element.getAttribute('data-run-url') || '';
    var chart = new Chart(element, {
      mode: 'points', xKind: 'index', height: 260, label: element.getAttribute('data-metric'),
      onPointClick: function (p) { window.location.href = runUrl.replace(/0$/, String(p.iid)); }
    });
    chart.setSeries([{name: element.getAttribute('data-metric'), points: points.map(function (p, i) {
      return {x: i + 1, y: p.value, label: p.name + ' #' + p.iid, iid: p.iid};
    })}]);
  });

  var resizeTimer = null;
  window.addEventListener('resize', function () {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(function () {
      remoteCharts.forEach(function (c) { c.chart.redraw(); });
    }, 150);
  });
}());

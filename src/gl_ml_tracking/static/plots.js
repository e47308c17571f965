/* gl-ml-tracking: two small SVG plots over runs, for the charts panel.
 *
 *   GLMLPlots.scatter(element, [{iid, name, color, x, y}], {xLabel, yLabel, best, runUrl})
 *   GLMLPlots.parallel(element, [{iid, name, color, values: {axisId: v}}],
 *                      [{id, label, metric}], {best, runUrl})
 *
 * Numbers get a linear axis; anything else (a parameter like "adam") gets one
 * evenly spaced position per distinct value. Runs without a value are left out
 * of the scatter and break the parallel line at that axis (a run with no two
 * neighbouring values makes no line). Hover shows a run's
 * values (an SVG <title> and a highlight); a click opens the run. The run whose
 * iid is `best` is drawn on top, marked with data-best="true".
 */
(function () {
  'use strict';

  var SVG_NS = 'http://www.w3.org/2000/svg';

  function svg(name, attrs, parent) {
    var node = document.createElementNS(SVG_NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function text(parent, x, y, value, attrs) {
    var node = svg('text', Object.assign({x: x, y: y}, attrs || {}), parent);
    node.textContent = value;
    return node;
  }
  function fmt(v) {
    if (typeof v !== 'number') { return String(v); }
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) { return v.toExponential(2); }
    return String(Math.round(v * 1e4) / 1e4);
  }
  function present(v) { return v !== null && v !== undefined && v !== '' && !(typeof v === 'number' && !isFinite(v)); }

  // An axis over values: {pos(v) in [0, 1], ticks: [[v, label]]}.
  function axis(values) {
    var shown = values.filter(present);
    var numeric = shown.length && shown.every(function (v) { return typeof v === 'number'; });
    if (numeric) {
      var lo = Math.min.apply(null, shown), hi = Math.max.apply(null, shown);
      if (lo === hi) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
      var ticks = [0, 0.25, 0.5, 0.75, 1].map(function (f) { var v = lo + (hi - lo) * f; return [v, fmt(v)]; });
      return {numeric: true, pos: function (v) { return (v - lo) / (hi - lo); }, ticks: ticks};
    }
    var distinct = [];
    shown.forEach(function (v) { if (distinct.indexOf(String(v)) < 0) { distinct.push(String(v)); } });
    distinct.sort();
    var n = Math.max(1, distinct.length - 1);
    return {numeric: false, pos: function (v) { return distinct.length === 1 ? 0.5 : distinct.indexOf(String(v)) / n; },
            ticks: distinct.map(function (d) { return [d, d.length > 14 ? d.slice(0, 13) + '…' : d]; })};
  }

  function frame(element, height) {
    element.textContent = '';
    var width = Math.max(280, element.clientWidth || 600);
    var root = svg('svg', {width: width, height: height, viewBox: '0 0 ' + width + ' ' + height, role: 'img'}, element);
    return {root: root, width: width, height: height};
  }

  function open(url, iid) { if (url) { window.location.href = url.replace(/0$/, String(iid)); } }

  function emphasise(root, iid) {
    Array.prototype.forEach.call(root.querySelectorAll('[data-iid]'), function (node) {
      node.classList.toggle('glml-dim', iid !== null && node.getAttribute('data-iid') !== String(iid));
    });
  }

  function scatter(element, runs, options) {
    var f = frame(element, 300), m = {top: 12, right: 16, bottom: 42, left: 62};
    var points = runs.filter(function (r) { return present(r.x) && present(r.y); });
    element.setAttribute('data-point-count', String(points.length));
    if (!points.length) {
      element.textContent = 'No run has both values.';
      return;
    }
    var ax = axis(points.map(function (p) { return p.x; })), ay = axis(points.map(function (p) { return p.y; }));
    var w = f.width - m.left - m.right, h = f.height - m.top - m.bottom;
    var sx = function (v) { return m.left + (0.04 + 0.92 * ax.pos(v)) * w; };
    var sy = function (v) { return m.top + h - (0.04 + 0.92 * ay.pos(v)) * h; };
    var grid = svg('g', {'class': 'glml-axis'}, f.root);
    ax.ticks.forEach(function (t) {
      svg('line', {'class': 'glml-grid-line', x1: sx(t[0]), x2: sx(t[0]), y1: m.top, y2: m.top + h}, grid);
      text(grid, sx(t[0]), m.top + h + 16, t[1], {'text-anchor': 'middle'});
    });
    ay.ticks.forEach(function (t) {
      svg('line', {'class': 'glml-grid-line', x1: m.left, x2: m.left + w, y1: sy(t[0]), y2: sy(t[0])}, grid);
      text(grid, m.left - 6, sy(t[0]) + 4, t[1], {'text-anchor': 'end'});
    });
    text(grid, m.left + w, f.height - 6, options.xLabel || '', {'text-anchor': 'end', 'class': 'glml-axis-name'});
    text(grid, m.left, m.top - 2, options.yLabel || '', {'class': 'glml-axis-name'});
    var ordered = points.filter(function (p) { return p.iid !== options.best; })
      .concat(points.filter(function (p) { return p.iid === options.best; }));
    ordered.forEach(function (p) {
      var best = p.iid === options.best;
      var dot = svg('circle', {cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: best ? 7 : 5.5, fill: p.color,
                               'class': 'glml-plot-dot' + (best ? ' glml-best-point' : ''), 'data-iid': p.iid,
                               'data-color': p.color, 'data-best': best ? 'true' : 'false', tabindex: 0}, f.root);
      svg('title', {}, dot).textContent = p.name + ' #' + p.iid + (best ? ' (best)' : '') + '\n' +
        (options.xLabel || 'x') + ': ' + fmt(p.x) + '\n' + (options.yLabel || 'y') + ': ' + fmt(p.y);
      dot.addEventListener('mouseenter', function () { emphasise(f.root, p.iid); });
      dot.addEventListener('mouseleave', function () { emphasise(f.root, null); });
      dot.addEventListener('click', function () { open(options.runUrl, p.iid); });
    });
  }

  function parallel(element, runs, axes, options) {
    var f = frame(element, 320), m = {top: 28, right: 12, bottom: 26, left: 12};
    element.setAttribute('data-axis-count', String(axes.length));
    element.setAttribute('data-line-count', '0');
    if (axes.length < 2) {
      element.textContent = 'Parallel coordinates need at least two axes: the runs shown have no parameters that differ.';
      return;
    }
    var w = f.width - m.left - m.right, h = f.height - m.top - m.bottom;
    var scales = axes.map(function (a) { return axis(runs.map(function (r) { return r.values[a.id]; })); });
    var x = function (i) { return m.left + (axes.length === 1 ? w / 2 : i * w / (axes.length - 1)); };
    var y = function (i, v) { return m.top + h - scales[i].pos(v) * h; };
    var lines = svg('g', {}, f.root);
    var ordered = runs.filter(function (r) { return r.iid !== options.best; })
      .concat(runs.filter(function (r) { return r.iid === options.best; }));
    var drawn = 0;
    ordered.forEach(function (run) {
      var d = '', pen = 'M', segments = 0;
      axes.forEach(function (a, i) {
        var v = run.values[a.id];
        if (!present(v)) { pen = 'M'; return; }
        if (pen === 'L') { segments += 1; }
        d += pen + x(i).toFixed(1) + ' ' + y(i, v).toFixed(1);
        pen = 'L';
      });
      if (!segments) { return; }  // a lone point is no line
      drawn += 1;
      var best = run.iid === options.best;
      var line = svg('path', {d: d, stroke: run.color, fill: 'none', 'class': 'glml-pc-line' + (best ? ' glml-best-line' : ''),
                              'data-iid': run.iid, 'data-color': run.color, 'data-best': best ? 'true' : 'false'}, lines);
      svg('title', {}, line).textContent = run.name + ' #' + run.iid + (best ? ' (best)' : '') + '\n' +
        axes.map(function (a) { return a.label + ': ' + (present(run.values[a.id]) ? fmt(run.values[a.id]) : '—'); }).join('\n');
      line.addEventListener('mouseenter', function () { emphasise(f.root, run.iid); });
      line.addEventListener('mouseleave', function () { emphasise(f.root, null); });
      line.addEventListener('click', function () { open(options.runUrl, run.iid); });
    });
    element.setAttribute('data-line-count', String(drawn));
    axes.forEach(function (a, i) {
      var g = svg('g', {'class': 'glml-axis glml-pc-axis', 'data-axis': a.id}, f.root);
      svg('line', {x1: x(i), x2: x(i), y1: m.top, y2: m.top + h, 'class': 'glml-pc-rule'}, g);
      text(g, x(i), m.top - 10, a.label, {'text-anchor': i === 0 ? 'start' : i === axes.length - 1 ? 'end' : 'middle',
                                         'class': 'glml-axis-name' + (a.metric ? ' glml-strong' : '')});
      var last = i === axes.length - 1 && i > 0;  // the last axis labels its ticks on its left: nothing is cut
      scales[i].ticks.forEach(function (t) {
        text(g, x(i) + (last ? -4 : 4), y(i, t[0]) + 4, t[1], {'class': 'glml-pc-tick', 'text-anchor': last ? 'end' : 'start'});
      });
    });
  }

  window.GLMLPlots = {scatter: scatter, parallel: parallel};
}());

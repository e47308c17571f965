/* gl-ml-tracking: a small, dependency-free SVG line/point chart.
 *
 *   var chart = new GLMLChart(element, {mode: 'line' | 'points', xKind: 'step' | 'time' | 'index',
 *                                       height: 240, onZoom: fn(x0, x1), onReset: fn()});
 *   chart.setSeries([{name, color, points: [{x, y, min, max, label}]}]);
 *   chart.setOptions({log: true, smoothing: 0.6});
 *
 * Lines follow each point's `y`; when points carry `min`/`max` (server-side
 * buckets) a faint band shows the spread. Smoothing is a debiased exponential
 * moving average (as TensorBoard's); the raw line stays visible behind it.
 * Drag horizontally to zoom (the owner refetches finer data in onZoom),
 * double-click or "Reset zoom" to go back. Hovering shows the values at the
 * nearest x of every series.
 *
 * For tests and tools the <svg> carries data-point-count (points drawn) and
 * each series path data-series/data-points.
 */
(function () {
  'use strict';

  var SVG_NS = 'http://www.w3.org/2000/svg';
  // 24 colours told apart on white (the runs table, the experiment charts and the compare page share them).
  var PALETTE = ['#1f75cb', '#e9730c', '#108548', '#c91c00', '#7b58cf', '#0b8a8a', '#c0287a', '#ab6100',
                 '#8db600', '#5b6cd9', '#b4421c', '#00a3c4', '#f3c300', '#875692', '#e68fac', '#2b3d26',
                 '#c2b280', '#604e97', '#f99379', '#654522', '#84a8d8', '#848482', '#0067a5', '#dcd300'];
  var MARGIN = {top: 10, right: 14, bottom: 30, left: 58};

  function svg(name, attrs, parent) {
    var node = document.createElementNS(SVG_NS, name);
    for (var key in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, key)) { node.setAttribute(key, String(attrs[key])); }
    }
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function html(name, className, parent) {
    var node = document.createElement(name);
    if (className) { node.className = className; }
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function niceStep(span, count) {
    var raw = span / Math.max(1, count);
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var unit = raw / power;
    var nice = unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10; // never more ticks than asked
    return nice * power;
  }

  function linearTicks(lo, hi, count) {
    if (!(hi > lo)) { return [lo]; }
    var step = niceStep(hi - lo, count);
    var ticks = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
      if (ticks.length > 50) { break; }
    }
    return ticks;
  }

  function logTicks(lo, hi) {
    var ticks = [];
    for (var e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      var v = Math.pow(10, e);
      if (v >= lo * 0.999 && v <= hi * 1.001) { ticks.push(v); }
    }
    if (ticks.length < 2) { return linearTicks(lo, hi, 4); }
    return ticks;
  }

  function formatNumber(v) {
    if (v === null || v === undefined || isNaN(v)) { return 'NaN'; }
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) { return v.toExponential(2).replace(/\.?0+e/, 'e'); }
    return String(Math.round(v * 1e6) / 1e6);
  }

  function pad(n) { return (n < 10 ? '0' : '') + n; }

  function formatTime(ms, span) {
    var d = new Date(ms);
    var hms = pad(d.getHours()) + ':' + pad(d.getMinutes()) + (span < 600000 ? ':' + pad(d.getSeconds()) : '');
    if (span < 86400000) { return hms; }
    return (d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hms;
  }

  function smooth(points, weight) {
    if (!(weight > 0)) { return points; }
    var last = 0, n = 0, out = [];
    for (var i = 0; i < points.length; i++) {
      var p = points[i];
      if (p.y === null || !isFinite(p.y)) { out.push(p); continue; }
      n += 1;
      last = last * weight + (1 - weight) * p.y;
      out.push({x: p.x, y: last / (1 - Math.pow(weight, n)), raw: p});
    }
    return out;
  }

  function GLMLChart(element, options) {
    this.el = element;
    this.options = options || {};
    this.mode = this.options.mode || 'line';
    this.xKind = this.options.xKind || 'step';
    this.log = false;
    this.smoothing = 0;
    this.series = [];
    this.view = null; // [x0, x1] when zoomed locally
    this.zoomed = false;
    this.dragging = false;
    this.el.classList.add('glml-chart-ready');
  }

  // Redraw for a new size, but not under a drag: drawing replaces the overlay, and
  // the drag's mouseup would reach a new one that knows nothing of it (the zoom is
  // lost). The page grows a scrollbar, and so resizes, just as its charts load.
  GLMLChart.prototype.redraw = function () {
    if (this.dragging) {
      this.el.setAttribute('data-redraw-pending', 'true');
      return;
    }
    this.draw();
  };

  GLMLChart.prototype.endDrag = function () {
    this.dragging = false;
    if (this.el.getAttribute('data-redraw-pending')) {
      this.el.removeAttribute('data-redraw-pending');
      this.draw();
    }
  };

  GLMLChart.palette = PALETTE;

  GLMLChart.prototype.setOptions = function (opts) {
    if ('log' in opts) { this.log = !!opts.log; }
    if ('smoothing' in opts) { this.smoothing = Math.max(0, Math.min(0.99, +opts.smoothing || 0)); }
    if ('xKind' in opts) { this.xKind = opts.xKind; }
    this.draw();
  };

  GLMLChart.prototype.setSeries = function (series, zoomed, note) {
    this.series = series || [];
    this.note = note || '';
    if (zoomed !== undefined) { this.zoomed = zoomed; }
    this.draw();
  };

  GLMLChart.prototype.message = function (text) {
    this.el.textContent = '';
    var note = html('div', 'glml-chart-message', this.el);
    note.textContent = text;
    this.el.setAttribute('data-state', 'message');
  };

  GLMLChart.prototype.visiblePoints = function (points) {
    var view = this.view, log = this.log;
    return points.filter(function (p) {
      if (view && (p.x < view[0] || p.x > view[1])) { return false; }
      if (log && !(p.y > 0)) { return false; }
      return p.y !== null && isFinite(p.y);
    });
  };

  GLMLChart.prototype.draw = function () {
    var self = this;
    var el = this.el;
    var width = Math.max(200, el.clientWidth || 400);
    var height = this.options.height || 240;
    var drawn = this.series.map(function (s, i) {
      var pts = self.visiblePoints(s.points || []);
      return {name: s.name, color: s.color || PALETTE[i % PALETTE.length], points: pts,
              smoothed: self.mode === 'line' ? smooth(pts, self.smoothing) : pts, url: s.url};
    });
    var total = drawn.reduce(function (n, s) { return n + s.points.length; }, 0);
    el.textContent = '';
    if (!total) {
      this.message(this.series.length ? (this.log ? 'No positive values to show on a log scale.' : 'No values to show.')
                                      : 'No data.');
      if (this.zoomed || this.view) { this.addReset(); }
      return;
    }
    var xs = [], ys = [];
    drawn.forEach(function (s) {
      s.points.forEach(function (p) {
        xs.push(p.x);
        // a bucket spans x_min..x_max: the axis covers the data, not only the buckets' last points
        if (p.xMin !== undefined && p.xMin !== null) { xs.push(p.xMin, p.xMax); }
        ys.push(p.y);
        if (p.min !== null && p.min !== undefined && (!self.log || p.min > 0)) { ys.push(p.min); }
        if (p.max !== null && p.max !== undefined && (!self.log || p.max > 0)) { ys.push(p.max); }
      });
    });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    if (this.view) { x0 = this.view[0]; x1 = this.view[1]; }
    if (this.mode === 'points' && !this.view) { x0 -= 0.5; x1 += 0.5; } // keep edge dots inside
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (this.log) {
      if (y0 === y1) { y0 /= 2; y1 *= 2; }
    } else {
      if (y0 === y1) { var d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
      var padY = (y1 - y0) * 0.05; y0 -= padY; y1 += padY;
    }
    var plotW = width - MARGIN.left - MARGIN.right, plotH = height - MARGIN.top - MARGIN.bottom;
    var ly0 = this.log ? Math.log10(y0) : y0, ly1 = this.log ? Math.log10(y1) : y1;
    var sx = function (x) { return MARGIN.left + (x - x0) / (x1 - x0) * plotW; };
    var sy = function (y) {
      var v = self.log ? Math.log10(y) : y;
      return MARGIN.top + plotH - (v - ly0) / (ly1 - ly0) * plotH;
    };
    var invX = function (px) { return x0 + (px - MARGIN.left) / plotW * (x1 - x0); };
    this.scale = {sx: sx, sy: sy, invX: invX, x0: x0, x1: x1};

    var root = svg('svg', {width: width, height: height, viewBox: '0 0 ' + width + ' ' + height, role: 'img',
                           'aria-label': this.options.label || 'chart', 'data-point-count': total}, el);
    var defs = svg('defs', {}, root);
    var clipId = 'glml-clip-' + Math.random().toString(36).slice(2);
    svg('rect', {x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH}, svg('clipPath', {id: clipId}, defs));

    // axes and grid
    var xAxis = svg('g', {'class': 'glml-axis glml-axis-x'}, root);
    var yAxis = svg('g', {'class': 'glml-axis glml-axis-y'}, root);
    var xTicks = this.xKind === 'time' ? linearTicks(x0, x1, Math.max(2, Math.floor(plotW / 110)))
                                       : linearTicks(x0, x1, Math.max(2, Math.floor(plotW / 80)));
    if (this.xKind === 'index' || this.xKind === 'step') { // steps and run positions are whole numbers
      xTicks = xTicks.filter(function (t) { return Math.abs(t - Math.round(t)) < 1e-6; }).map(Math.round);
    }
    xTicks.forEach(function (t) {
      var x = sx(t);
      svg('line', {'class': 'glml-grid-line', x1: x, x2: x, y1: MARGIN.top, y2: MARGIN.top + plotH}, xAxis);
      var label = svg('text', {x: x, y: height - 10, 'text-anchor': 'middle'}, xAxis);
      label.textContent = self.xKind === 'time' ? formatTime(t, x1 - x0) : formatNumber(t);
    });
    var yTicks = this.log ? logTicks(y0, y1) : linearTicks(y0, y1, Math.max(3, Math.floor(plotH / 32)));
    yTicks.forEach(function (t) {
      var y = sy(t);
      svg('line', {'class': 'glml-grid-line', x1: MARGIN.left, x2: MARGIN.left + plotW, y1: y, y2: y}, yAxis);
      var label = svg('text', {x: MARGIN.left - 6, y: y + 4, 'text-anchor': 'end'}, yAxis);
      label.textContent = formatNumber(t);
    });
    svg('path', {d: 'M' + MARGIN.left + ' ' + MARGIN.top + 'V' + (MARGIN.top + plotH) + 'H' + (MARGIN.left + plotW),
                 fill: 'none'}, xAxis);
    var axisName = svg('text', {x: MARGIN.left + plotW, y: height - 10, 'text-anchor': 'end', 'class': 'glml-axis-name'}, xAxis);
    axisName.textContent = '';

    var plot = svg('g', {'clip-path': 'url(#' + clipId + ')'}, root);
    drawn.forEach(function (s, index) {
      var hasBand = s.points.some(function (p) { return p.min !== undefined && p.min !== null && p.max !== p.min; });
      if (self.mode === 'line' && hasBand) {
        var top = [], bottom = [];
        s.points.forEach(function (p) {
          if (p.min === null || p.max === null || p.min === undefined) { return; }
          if (self.log && !(p.min > 0)) { return; }
          top.push(sx(p.x).toFixed(1) + ' ' + sy(p.max).toFixed(1));
          bottom.unshift(sx(p.x).toFixed(1) + ' ' + sy(p.min).toFixed(1));
        });
        if (top.length > 1) {
          svg('path', {'class': 'glml-band', d: 'M' + top.join('L') + 'L' + bottom.join('L') + 'Z', fill: s.color}, plot);
        }
      }
      if (self.mode === 'points') {
        var group = svg('g', {'data-series': s.name, 'data-points': s.points.length}, plot);
        s.points.forEach(function (p) {
          svg('circle', {'class': 'glml-dot', cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: 4.5, fill: s.color}, group);
        });
        return;
      }
      if (self.smoothing > 0) {
        svg('path', {'class': 'glml-series-raw', stroke: s.color, d: pathData(s.points, sx, sy)}, plot);
      }
      var line = svg('path', {'class': 'glml-series', stroke: s.color, d: pathData(s.smoothed, sx, sy),
                              'data-series': s.name, 'data-points': s.smoothed.length, 'data-index': index}, plot);
      if (s.smoothed.length === 1) {
        svg('circle', {'class': 'glml-dot', cx: sx(s.smoothed[0].x), cy: sy(s.smoothed[0].y), r: 3.5, fill: s.color}, plot);
      }
      return line;
    });

    if (drawn.length > 1 && this.options.legend !== false) {
      var legend = html('div', 'glml-chart-legend', el);
      drawn.forEach(function (s) {
        var item = html('span', '', legend);
        var swatch = html('span', 'glml-swatch', item);
        swatch.style.background = s.color;
        item.appendChild(document.createTextNode(s.name + (s.points.length ? '' : ' (no data)')));
      });
    }
    if (this.note) {
      var note = html('div', 'glml-chart-note', el);
      note.textContent = this.note;
    }
    this.drawn = drawn;
    this.root = root;
    this.attachInteraction(root, plotW, plotH);
    if (this.zoomed || this.view) { this.addReset(); }
    el.setAttribute('data-state', 'drawn');
  };

  function pathData(points, sx, sy) {
    var parts = [];
    var pen = 'M';
    for (var i = 0; i < points.length; i++) {
      var p = points[i];
      if (p.y === null || !isFinite(p.y)) { pen = 'M'; continue; }
      parts.push(pen + sx(p.x).toFixed(1) + ' ' + sy(p.y).toFixed(1));
      pen = 'L';
    }
    return parts.join('');
  }

  function nearest(points, x) {
    var lo = 0, hi = points.length - 1;
    if (hi < 0) { return null; }
    while (hi - lo > 1) {
      var mid = (lo + hi) >> 1;
      if (points[mid].x < x) { lo = mid; } else { hi = mid; }
    }
    return Math.abs(points[lo].x - x) <= Math.abs(points[hi].x - x) ? points[lo] : points[hi];
  }

  GLMLChart.prototype.addReset = function () {
    var self = this;
    var button = html('button', 'glml-btn glml-btn-sm glml-chart-reset', this.el);
    button.type = 'button';
    button.textContent = 'Reset zoom';
    button.addEventListener('click', function () { self.resetZoom(); });
  };

  GLMLChart.prototype.resetZoom = function () {
    this.view = null;
    this.zoomed = false;
    if (this.options.onReset) { this.options.onReset(); } else { this.draw(); }
  };

  GLMLChart.prototype.attachInteraction = function (root, plotW, plotH) {
    var self = this;
    var tooltip = html('div', 'glml-chart-tooltip', this.el);
    var overlay = svg('rect', {x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH, fill: 'transparent',
                               'class': 'glml-overlay'}, root);
    // Drawn over the overlay but transparent to the pointer: otherwise the line
    // under the cursor would count as leaving the overlay and hide the tooltip.
    var cross = svg('line', {'class': 'glml-crosshair', y1: MARGIN.top, y2: MARGIN.top + plotH, x1: 0, x2: 0,
                             visibility: 'hidden', 'pointer-events': 'none'}, root);
    var box = svg('rect', {'class': 'glml-zoom-box', x: 0, y: MARGIN.top, width: 0, height: plotH, visibility: 'hidden',
                           'pointer-events': 'none'}, root);
    var dragStart = null;

    function localX(event) {
      var rect = root.getBoundingClientRect();
      return Math.max(MARGIN.left, Math.min(MARGIN.left + plotW, event.clientX - rect.left));
    }

    function showTooltip(event) {
      var px = localX(event);
      var x = self.scale.invX(px);
      var rows = [], anchor = null;
      self.drawn.forEach(function (s) {
        var p = nearest(self.mode === 'points' ? s.points : s.smoothed, x);
        if (!p) { return; }
        if (anchor === null || Math.abs(p.x - x) < Math.abs(anchor - x)) { anchor = p.x; }
        rows.push({s: s, p: p});
      });
      if (anchor === null) { return; }
      cross.setAttribute('x1', self.scale.sx(anchor));
      cross.setAttribute('x2', self.scale.sx(anchor));
      cross.setAttribute('visibility', 'visible');
      tooltip.textContent = '';
      var head = html('div', '', tooltip);
      var raw0 = rows[0].p.raw || rows[0].p;
      head.textContent = self.xKind === 'time' ? new Date(anchor).toLocaleString()
        : self.xKind === 'index' ? (raw0.label || ('#' + anchor)) : 'step ' + anchor;
      rows.forEach(function (r) {
        var raw = r.p.raw || r.p;
        var line = html('div', '', tooltip);
        var swatch = html('span', 'glml-swatch', line);
        swatch.style.background = r.s.color;
        var text = (self.drawn.length > 1 ? r.s.name + ': ' : '') + formatNumber(r.p.y);
        if (r.p.raw) { text += ' (raw ' + formatNumber(raw.y) + ')'; }
        if (raw.min !== undefined && raw.min !== null && raw.max !== raw.min) {
          text += '  [' + formatNumber(raw.min) + ' … ' + formatNumber(raw.max) + ']';
        }
        line.appendChild(document.createTextNode(text));
      });
      tooltip.style.display = 'block';
      var left = self.scale.sx(anchor) + 12;
      if (left + tooltip.offsetWidth > root.clientWidth) { left = self.scale.sx(anchor) - tooltip.offsetWidth - 12; }
      tooltip.style.left = Math.max(0, left) + 'px';
      tooltip.style.top = (MARGIN.top + 4) + 'px';
      self.el.setAttribute('data-hover-x', String(anchor));
    }

    overlay.addEventListener('mousemove', function (event) {
      if (dragStart !== null) {
        var px = localX(event);
        box.setAttribute('x', Math.min(dragStart, px));
        box.setAttribute('width', Math.abs(px - dragStart));
        box.setAttribute('visibility', 'visible');
      }
      showTooltip(event);
    });
    overlay.addEventListener('mouseleave', function () {
      tooltip.style.display = 'none';
      cross.setAttribute('visibility', 'hidden');
    });
    overlay.addEventListener('mousedown', function (event) {
      if (event.button !== 0) { return; }
      dragStart = localX(event);
      self.dragging = true;
      event.preventDefault();
    });
    var finish = function (event) {
      if (dragStart === null) { return; }
      var px = localX(event);
      var a = Math.min(dragStart, px), b = Math.max(dragStart, px);
      dragStart = null;
      box.setAttribute('visibility', 'hidden');
      if (b - a < 6) { self.endDrag(); return; }
      self.dragging = false;  // a zoom draws anew anyway
      self.el.removeAttribute('data-redraw-pending');
      var lo = self.scale.invX(a), hi = self.scale.invX(b);
      if (self.options.onZoom) {
        self.zoomed = true;
        self.options.onZoom(lo, hi);
      } else {
        self.view = [lo, hi];
        self.draw();
      }
    };
    overlay.addEventListener('mouseup', finish);
    root.addEventListener('mouseleave', function () {
      if (dragStart === null) { return; }
      dragStart = null;
      box.setAttribute('visibility', 'hidden');
      self.endDrag();
    });
    overlay.addEventListener('dblclick', function () { self.resetZoom(); });
    overlay.addEventListener('click', function (event) {
      if (self.mode !== 'points' || !self.options.onPointClick) { return; }
      var x = self.scale.invX(localX(event));
      var s = self.drawn[0];
      var p = s && nearest(s.points, x);
      if (p && Math.abs(self.scale.sx(p.x) - localX(event)) < 10) { self.options.onPointClick(p); }
    });
  };

  window.GLMLChart = GLMLChart;
}());

/* gl-ml-tracking: which way each metric improves ("min": lower is better).
 *
 * The server gives each metric its default (loss-like names are "min"); the
 * reader can switch it, and the choice is remembered in this browser per
 * project and metric (localStorage). Every "best" on the page follows it:
 *
 *   GLMLDirection.get(key, fallback)   -> "min" | "max"
 *   GLMLDirection.set(key, direction)  -> stores it and notifies listeners
 *   GLMLDirection.onChange(fn(key, direction))
 *   GLMLDirection.best(values, direction) -> the best finite number, or null
 *
 * Rows marked data-best-row (the compare table) are kept up to date here:
 * their cells with data-value get glml-best, and the row's toggle button
 * (data-direction-toggle) switches the direction.
 */
(function () {
  'use strict';

  var listeners = [];
  var project = (window.location.pathname.split('/-/')[0] || '/');

  function storageKey(key) { return 'glml-direction:' + project + ':' + key; }

  function read(key) {
    try { return window.localStorage.getItem(storageKey(key)); } catch (e) { return null; }
  }

  var Direction = {
    get: function (key, fallback) {
      var stored = read(key);
      return stored === 'min' || stored === 'max' ? stored : (fallback === 'min' ? 'min' : 'max');
    },
    set: function (key, direction) {
      try { window.localStorage.setItem(storageKey(key), direction); } catch (e) { /* private mode: not remembered */ }
      listeners.forEach(function (fn) { fn(key, direction); });
    },
    onChange: function (fn) { listeners.push(fn); },
    label: function (direction) { return direction === 'min' ? 'lower is better' : 'higher is better'; },
    best: function (values, direction) {
      var best = null;
      values.forEach(function (v) {
        if (typeof v !== 'number' || !isFinite(v)) { return; }
        if (best === null || (direction === 'min' ? v < best : v > best)) { best = v; }
      });
      return best;
    }
  };

  function applyRow(row) {
    var key = row.getAttribute('data-metric');
    var direction = Direction.get(key, row.getAttribute('data-default-direction') || row.getAttribute('data-direction'));
    row.setAttribute('data-direction', direction);
    var cells = Array.prototype.slice.call(row.querySelectorAll('[data-value]'));
    var values = cells.map(function (c) { return parseFloat(c.getAttribute('data-value')); });
    var best = Direction.best(values, direction);
    var distinct = values.filter(function (v, i) { return values.indexOf(v) === i; }).length > 1;
    cells.forEach(function (cell, i) { cell.classList.toggle('glml-best', distinct && values[i] === best); });
    var toggle = row.querySelector('[data-direction-toggle]');
    if (toggle) { toggle.textContent = Direction.label(direction); }
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll('[data-best-row]')); }

  rows().forEach(function (row) {
    if (!row.getAttribute('data-default-direction')) {
      row.setAttribute('data-default-direction', row.getAttribute('data-direction'));
    }
    applyRow(row);
    var toggle = row.querySelector('[data-direction-toggle]');
    if (toggle) {
      toggle.addEventListener('click', function () {
        var key = row.getAttribute('data-metric');
        Direction.set(key, row.getAttribute('data-direction') === 'min' ? 'max' : 'min');
      });
    }
  });
  Direction.onChange(function (key) {
    rows().forEach(function (row) { if (row.getAttribute('data-metric') === key) { applyRow(row); } });
  });

  // Run colours on the compare table's headers: the same palette as its chart.
  var palette = (window.GLMLChart && window.GLMLChart.palette) || null;
  function paint() {
    palette = palette || (window.GLMLChart && window.GLMLChart.palette);
    if (!palette) { return; }
    Array.prototype.slice.call(document.querySelectorAll('th[data-run-index]')).forEach(function (th) {
      if (th.querySelector('.glml-swatch')) { return; }
      var swatch = document.createElement('span');
      swatch.className = 'glml-swatch';
      swatch.setAttribute('data-testid', 'run-swatch');
      swatch.style.background = palette[+th.getAttribute('data-run-index') % palette.length];
      th.insertBefore(swatch, th.firstChild);
    });
  }
  // Deferred with the page's other scripts: the chart's palette is there once the DOM is.
  document.addEventListener('DOMContentLoaded', paint);
  window.addEventListener('load', paint);

  window.GLMLDirection = Direction;
}());

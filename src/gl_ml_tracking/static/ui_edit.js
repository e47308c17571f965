/* gl-ml-tracking pages: dropdowns kept inside the window, the Markdown
 * editor's Preview tab, and the runs table's remembered columns. Every page
 * works without this file. */
(function () {
  'use strict';

  function all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  // ---------------------------------------------------------------- dropdowns stay in the window
  var MARGIN = 8;
  function keepInside(details) {
    var panel = details.querySelector('.glml-dropdown-panel, .glml-confirm-panel');
    if (!panel) { return; }
    panel.style.transform = '';
    var box = panel.getBoundingClientRect();
    var width = document.documentElement.clientWidth;
    var shift = 0;
    if (box.right > width - MARGIN) { shift = width - MARGIN - box.right; }
    if (box.left + shift < MARGIN) { shift = MARGIN - box.left; }
    if (shift) { panel.style.transform = 'translateX(' + Math.round(shift) + 'px)'; }
  }
  all('.glml details.glml-dropdown, .glml details.glml-confirm').forEach(function (details) {
    details.addEventListener('toggle', function () { if (details.open) { keepInside(details); } });
    if (details.open) { keepInside(details); }
  });
  window.addEventListener('resize', function () {
    all('.glml details.glml-dropdown[open], .glml details.glml-confirm[open]').forEach(keepInside);
  });

  // A link (or an edit's redirect) to a folded section, e.g. #experiment-tags, unfolds it.
  if (window.location.hash.length > 1) {
    var target = document.getElementById(decodeURIComponent(window.location.hash.slice(1)));
    if (target && target.tagName === 'DETAILS') { target.open = true; }
  }

  // ---------------------------------------------------------------- Markdown editor: Write / Preview
  function csrfOf(form) {
    var field = form.querySelector('input[name="_glml_csrf"]');
    return field ? field.value : '';
  }
  all('[data-md-editor]').forEach(function (form) {
    var tabs = form.querySelector('[data-md-tabs]');
    var source = form.querySelector('[data-md-source]');
    var preview = form.querySelector('[data-md-preview]');
    if (!tabs || !source || !preview || !window.fetch) { return; }
    tabs.hidden = false;
    function select(name) {
      all('[data-md-tab]', tabs).forEach(function (tab) {
        var on = tab.getAttribute('data-md-tab') === name;
        tab.classList.toggle('active', on);
        tab.setAttribute('aria-selected', String(on));
      });
      source.hidden = name !== 'write';
      preview.hidden = name !== 'preview';
    }
    all('[data-md-tab]', tabs).forEach(function (tab) {
      tab.addEventListener('click', function () {
        var name = tab.getAttribute('data-md-tab');
        select(name);
        if (name !== 'preview') { source.focus(); return; }
        preview.textContent = 'Loading preview…';
        var body = new URLSearchParams();
        body.set('text', source.value);
        fetch(source.getAttribute('data-preview-url'), {
          method: 'POST', credentials: 'same-origin', body: body,
          headers: {'X-GLML-CSRF-Token': csrfOf(form), Accept: 'application/json'}
        }).then(function (response) {
          return response.json().then(function (data) {
            if (!response.ok) { throw new Error(data.message || ('HTTP ' + response.status)); }
            return data;
          });
        }).then(function (data) {
          // The server's Markdown renderer escapes all HTML of the text first.
          preview.innerHTML = data.html || '<p class="glml-muted">Nothing to preview.</p>';
          preview.setAttribute('data-state', 'ready');
        }, function (error) {
          preview.textContent = 'Could not preview: ' + error.message;
          preview.setAttribute('data-state', 'error');
        });
      });
    });
  });

  // ---------------------------------------------------------------- the filter's match count, counted apart
  all('[data-match-count-url]').forEach(function (element) {
    if (!window.fetch) { return; }
    fetch(element.getAttribute('data-match-count-url'), {credentials: 'same-origin', headers: {Accept: 'application/json'}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var strong = document.createElement('strong');
        strong.textContent = data.count.toLocaleString('en') + (data.capped ? '+' : '');
        var many = data.count !== 1 || data.capped;
        element.textContent = '';
        element.appendChild(strong);
        element.appendChild(document.createTextNode(' run' + (many ? 's match' : ' matches') + ' this filter.'));
        element.setAttribute('data-state', 'counted');
      });
  });

  // ---------------------------------------------------------------- runs table: columns remembered per experiment
  var chooser = document.querySelector('[data-columns-memory]');
  if (chooser && window.localStorage) {
    var key = 'glml-columns:' + chooser.getAttribute('data-columns-memory');
    var columnsForm = document.getElementById('columns-form');
    var params = new URLSearchParams(window.location.search);
    var stored = null;
    try { stored = JSON.parse(window.localStorage.getItem(key) || 'null'); } catch (e) { stored = null; }
    if (!params.has('cols_set') && Array.isArray(stored)) {
      // Show the columns this reader chose last time for this experiment.
      params.set('cols_set', '1');
      params.delete('cols');
      stored.forEach(function (id) { params.append('cols', id); });
      window.location.replace(window.location.pathname + '?' + params.toString() + window.location.hash);
      return;
    }
    if (columnsForm) {
      columnsForm.addEventListener('submit', function () {
        var chosen = all('input[name="cols"][form="columns-form"]').filter(function (box) { return box.checked; })
          .map(function (box) { return box.value; });
        try { window.localStorage.setItem(key, JSON.stringify(chosen)); } catch (e) { /* storage full or off */ }
      });
    }
    if (chooser.getAttribute('data-columns-chosen') === '1' && params.has('cols_set')) {
      try { window.localStorage.setItem(key, JSON.stringify(params.getAll('cols'))); } catch (e) { /* ignore */ }
    }
  }
}());

/* The trace page: a span's inputs, outputs, attributes and events are loaded when its
 * row is opened (a 10,000-span trace stays a light page). Without this file each row
 * links to the span's own page. */
(function () {
  'use strict';
  Array.prototype.slice.call(document.querySelectorAll('details.glml-span')).forEach(function (row) {
    row.addEventListener('toggle', function () {
      var body = row.querySelector('[data-span-src]');
      if (!row.open || !body || body.getAttribute('data-loaded')) { return; }
      body.setAttribute('data-loaded', 'loading');
      fetch(body.getAttribute('data-span-src'), { credentials: 'same-origin' }).then(function (resp) {
        if (!resp.ok) { throw new Error('HTTP ' + resp.status); }
        return resp.text();
      }).then(function (html) {
        body.innerHTML = html;  // our own escaped template
        body.setAttribute('data-loaded', 'true');
      }, function () {
        body.removeAttribute('data-loaded');
      });
    });
  });
}());

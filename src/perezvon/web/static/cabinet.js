/* perezvon cabinet: small progressive enhancements. Every page works without this file. */
(function () {
  'use strict';

  /* -- schedule grid: click or drag to paint working hours ------------------------------------- */
  function scheduleGrid(grid) {
    var boxes = Array.prototype.slice.call(grid.querySelectorAll('input[type=checkbox]'));
    var painting = false, target = true;
    grid.classList.add('paint');
    function set(box, value) { box.checked = value; }
    grid.addEventListener('mousedown', function (e) {
      var cell = e.target.closest('.cell');
      if (!cell || e.button !== 0) return;
      e.preventDefault();
      var box = cell.querySelector('input');
      painting = true; target = !box.checked; set(box, target);
    });
    grid.addEventListener('mouseover', function (e) {
      if (!painting) return;
      var cell = e.target.closest('.cell');
      if (cell) set(cell.querySelector('input'), target);
    });
    document.addEventListener('mouseup', function () { painting = false; });
    // Mouse clicks were handled on mousedown; keyboard (Space) clicks have detail 0 and stay native.
    grid.addEventListener('click', function (e) {
      if (e.detail !== 0 && e.target.closest('.cell')) e.preventDefault();
    });
    var tools = document.querySelector('.schedule-tools');
    if (tools) {
      tools.hidden = false;
      tools.addEventListener('click', function (e) {
        var kind = e.target.getAttribute('data-fill');
        if (!kind) return;
        boxes.forEach(function (box) {
          var parts = box.value.split('-'), day = +parts[0], hour = +parts[1];
          set(box, kind === 'all' || (kind === 'workdays' && day <= 5 && hour >= 9 && hour < 18));
        });
      });
    }
  }

  /* -- journal: statuses and new requests appear without a reload ------------------------------ */
  function liveJournal(body) {
    var rowsUrl = body.getAttribute('data-rows-url');
    var eventsUrl = body.getAttribute('data-events-url');
    var indicator = document.getElementById('live-indicator');
    var busy = false, again = false, timer = null;

    function statuses() {
      var map = {};
      body.querySelectorAll('tr[data-request-id]').forEach(function (tr) {
        var badge = tr.querySelector('[data-status]');
        map[tr.getAttribute('data-request-id')] = badge ? badge.getAttribute('data-status') : '';
      });
      return map;
    }
    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      fetch(rowsUrl, { credentials: 'same-origin', cache: 'no-store' }).then(function (response) {
        // A redirect means the session ended: leave the page as it is rather than paint a login form in it.
        if (!response.ok || response.redirected) return null;
        return response.text();
      }).then(function (html) {
        if (html === null || html === undefined) return;
        var before = statuses();
        body.innerHTML = html; // server-rendered and escaped; the CSP forbids inline script regardless
        var count = body.querySelector('[data-journal-count]'), badge = document.querySelector('.page-head h1 .count');
        if (count && badge) badge.textContent = count.textContent;
        body.querySelectorAll('tr[data-request-id]').forEach(function (tr) {
          var id = tr.getAttribute('data-request-id'), badge = tr.querySelector('[data-status]');
          if (!(id in before) || (badge && before[id] !== badge.getAttribute('data-status'))) tr.classList.add('changed');
        });
      }).catch(function () { /* offline for a moment: the next tick tries again */ }).then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
    }
    function poll() {
      if (indicator) indicator.setAttribute('data-mode', 'poll');
      if (timer) return;
      timer = setInterval(function () { if (!document.hidden) refresh(); }, 3000);
    }
    if (eventsUrl && window.EventSource) {
      var source = new EventSource(eventsUrl);
      var debounce = null;
      source.onmessage = function () {
        // Coalesce a call's bursts of events; the engine publishes progress up to 0.2 s before it
        // writes it, so wait a little longer than that before re-reading.
        clearTimeout(debounce);
        debounce = setTimeout(refresh, 350);
      };
      // (Re)connected: catch up on anything that changed while the stream was down.
      source.onopen = function () { refresh(); };
      source.onerror = function () {
        // The bus went away (or the server answered 204): poll instead.
        if (source.readyState === EventSource.CLOSED) poll();
      };
      // Also catch changes the bus cannot report (another process's worker): a slow safety poll.
      setInterval(function () { if (!document.hidden) refresh(); }, 15000);
    } else {
      poll();
    }
  }

  /* -- one request: while it is pending or dialing, re-read its status and attempts ---------- */
  function liveRequest() {
    var regions = document.querySelectorAll('[data-live-region]');
    if (!regions.length || !window.DOMParser) return;
    function active() {
      var badge = document.querySelector('#request-status [data-status]');
      return badge && /^(pending|dialing)$/.test(badge.getAttribute('data-status'));
    }
    var timer = setInterval(function () {
      if (!active()) { clearInterval(timer); return; }
      if (document.hidden) return;
      fetch(location.href, { credentials: 'same-origin', cache: 'no-store' }).then(function (response) {
        return response.ok && !response.redirected ? response.text() : null;
      }).then(function (html) {
        if (!html) return;
        // DOMParser documents never run scripts; the regions are server-escaped markup.
        var fresh = new DOMParser().parseFromString(html, 'text/html');
        regions.forEach(function (region) {
          var next = fresh.getElementById(region.id);
          if (next) region.innerHTML = next.innerHTML;
        });
      }).catch(function () {});
    }, 3000);
  }

  /* -- small helpers ------------------------------------------------------------------------------ */
  document.addEventListener('click', function (e) {
    var button = e.target.closest('[data-copy]');
    if (!button) return;
    var source = document.querySelector(button.getAttribute('data-copy'));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = button.getAttribute('data-copied') || label;
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });
  document.addEventListener('submit', function (e) {
    var message = e.target.getAttribute('data-confirm');
    if (message && !window.confirm(message)) e.preventDefault();
  });
  document.addEventListener('change', function (e) {
    if (e.target.hasAttribute('data-autosubmit')) e.target.form.submit();
  });

  /* -- the drop-in widget's live preview: the real ctw-widget.js, fed from the form, sending nothing -- */
  function widgetPreview(box) {
    var form = document.getElementById('widget-form');
    var mode = document.getElementById('widget-preview-mode');
    var script = document.createElement('script');
    script.src = box.getAttribute('data-script');
    document.head.appendChild(script);
    function value(name) { var input = form.elements[name]; return input ? input.value : ''; }
    function config() {
      var days = [].map.call(form.querySelectorAll('[name="ui.displaySchedule.days"]:checked'), function (b) { return +b.value; });
      var hours = [].map.call(form.querySelectorAll('input[name=cell]:checked'), function (b) {
        var p = b.value.split('-');
        return {dayOfWeek: +p[0], hour: +p[1]};
      });
      var ui = {
        color: value('ui.color'), position: value('ui.position'), title: value('ui.title'), language: value('ui.language'),
        buttonText: value('ui.buttonText'), nameField: value('ui.nameField'), consentText: value('ui.consentText'),
        pages: [], delaySeconds: 0, displaySchedule: {days: days, fromHour: 0, toHour: 24}
      };
      var schedule = {utcTimezone: value('schedule.utcTimezone'), hours: hours};
      return {preview: true, open: true, widgets: [{routeKey: value('routeKey'), ui: ui, utcTimezone: schedule.utcTimezone,
        phone: {callingCode: '7', trunkPrefix: '8'}}],
        closed: mode.value === 'closed' ? {collectNonWorkingRequests: form.elements.collectNonWorkingRequests.checked,
          workingSchedule: schedule} : null};
    }
    var timer;
    function draw() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var widget = document.createElement('perezvon-widget');
        widget.config = config();
        box.replaceChildren(widget);
      }, 150);
    }
    form.addEventListener('input', draw);
    form.addEventListener('change', draw);
    mode.addEventListener('change', draw);
    draw();
  }

  var preview = document.getElementById('widget-preview');
  if (preview) widgetPreview(preview);
  var grid = document.getElementById('schedule-grid');
  if (grid) scheduleGrid(grid);
  var rows = document.getElementById('journal-rows');
  if (rows) liveJournal(rows);
  liveRequest();
})();

/* perezvon ctw-widget.js: the drop-in callback widget ctw.js loads where a widget's ui is on. docs/sdk.md */
(function (w, d) {
'use strict';
if (!w.customElements || w.customElements.get('perezvon-widget')) return;

var TEXT = {
  ru: {
    launcher: 'Заказать обратный звонок', title: 'Мы вам перезвоним', close: 'Закрыть',
    phone: 'Ваш номер телефона', name: 'Ваше имя', optional: '(необязательно)', nameField: 'Имя',
    submit: 'Перезвоните мне', sending: 'Отправляем…', when: 'Когда позвонить',
    soonest: 'Как только начнём работать', closed: 'Сейчас мы не работаем. Выберите, когда вам позвонить.',
    closedNoRequests: 'Сейчас мы не работаем. Пожалуйста, зайдите в рабочее время.',
    badPhone: 'Введите номер полностью, с кодом города или оператора', needName: 'Введите имя',
    willCall: 'Мы позвоним вам: ', calling: 'Звоним вам. Пожалуйста, возьмите трубку.',
    soon: 'Заявка принята. Сейчас позвоним.', operator: 'Оператор на линии, соединяем с вами.',
    completed: 'Спасибо за разговор!', failed: 'Не удалось до вас дозвониться. Попробуйте ещё раз позже.',
    cancelled: 'Заявка отменена.', throttled: 'Вы уже заказали звонок. Пожалуйста, подождите немного.',
    blacklisted: 'Мы не можем позвонить на этот номер.', error: 'Не получилось отправить заявку. Попробуйте ещё раз.',
    today: 'сегодня', tomorrow: 'завтра', at: ' в ', unavailable: 'Заказ звонка сейчас недоступен.'
  },
  en: {
    launcher: 'Request a callback', title: 'We will call you back', close: 'Close',
    phone: 'Your phone number', name: 'Your name', optional: '(optional)', nameField: 'Name',
    submit: 'Call me back', sending: 'Sending…', when: 'When to call',
    soonest: 'As soon as we open', closed: 'We are closed now. Choose when we should call you.',
    closedNoRequests: 'We are closed now. Please come back during working hours.',
    badPhone: 'Enter the whole number, with its area or mobile code', needName: 'Enter your name',
    willCall: 'We will call you ', calling: 'Calling you now. Please pick up.',
    soon: 'Request received. Calling you shortly.', operator: 'An operator is on the line, connecting you.',
    completed: 'Thank you for the call!', failed: 'We could not reach you. Please try again later.',
    cancelled: 'The request was cancelled.', throttled: 'You have already asked for a call. Please wait a little.',
    blacklisted: 'We cannot call this number.', error: 'The request could not be sent. Please try again.',
    today: 'today', tomorrow: 'tomorrow', at: ' at ', unavailable: 'Callbacks are not available right now.'
  }
};
var DONE = {completed: 1, failed: 1, cancelled: 1};
var MIN = 6e4, HOUR = 36e5;

// -- pure rules (also customElements.get('perezvon-widget').rules, for tests)

// What a visitor typed -> the API's 11 digits, for a plan {callingCode, trunkPrefix}: '+7 (900) 123-45-67',
// '8 900 123-45-67' and '900 123 45 67' all give '79001234567'. '' when it is not a whole number yet.
function normalise(typed, plan) {
  var x = String(typed).replace(/\D/g, ''), cc = plan.callingCode, tp = plan.trunkPrefix || '';
  var national = 11 - cc.length;
  if (!/^\s*\+/.test(typed)) {
    if (tp && x.indexOf(tp) === 0 && x.length === national + tp.length) x = cc + x.slice(tp.length);
    else if (x.length === national) x = cc + x;
  }
  return x.length === 11 && x.indexOf(cc) === 0 ? x : '';
}

// Whether the typed text is finished as typed: a leading trunk prefix or country code ('8 900…',
// '7 900…') waits for all 11 digits, so '7 900 123 45 6' is not taken for a 10-digit national number.
function complete(typed, plan) {
  var x = String(typed).replace(/\D/g, ''), cc = plan.callingCode, tp = plan.trunkPrefix || '';
  var lead = tp && x.indexOf(tp) === 0 ? tp : x.indexOf(cc) === 0 ? cc : '';
  if (/^\s*\+/.test(typed)) return x.length === 11;
  return x.length === 11 - cc.length + lead.length;
}

// 79001234567 -> '+7 (900) 123-45-67'; 15551234567 -> '+1 (555) 123-4567'; others '+CC NNN NNN NNN'.
function pretty(digits, plan) {
  var cc = plan.callingCode, n = digits.slice(cc.length);
  if (n.length === 10 && cc === '7') return '+7 (' + n.slice(0, 3) + ') ' + n.slice(3, 6) + '-' + n.slice(6, 8) + '-' + n.slice(8);
  if (n.length === 10) return '+' + cc + ' (' + n.slice(0, 3) + ') ' + n.slice(3, 6) + '-' + n.slice(6);
  return '+' + cc + ' ' + n.replace(/(\d{3})(?=\d)/g, '$1 ');
}

// WCAG 2 relative luminance and the text colour (black or white) with the better contrast on `hex`.
function luminance(hex) {
  return [1, 3, 5].map(function (i) {
    var c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  }).reduce(function (sum, c, i) { return sum + c * [0.2126, 0.7152, 0.0722][i]; }, 0);
}
function contrast(a, b) {
  var x = luminance(a), y = luminance(b);
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}
function textOn(hex) {
  return contrast(hex, '#000000') >= contrast(hex, '#ffffff') ? '#000000' : '#ffffff';
}

// "UTC+03:00" -> minutes east of UTC.
function offsetMinutes(utcTimezone) {
  var m = /^UTC([+-])(\d\d):(\d\d)$/.exec(utcTimezone || '');
  return m ? (m[1] === '-' ? -1 : 1) * (+m[2] * 60 + +m[3]) : 0;
}

// The call center's wall clock at `t` (ms): {day: ISO 1..7, hour, date: 'YYYY-MM-DD'}.
function wall(t, offset) {
  var x = new Date(t + offset * MIN);
  return {day: x.getUTCDay() || 7, hour: x.getUTCHours(), date: x.toISOString().slice(0, 10)};
}

// Page URL patterns: '*' matches anything; a leading '!' excludes; a pattern starting with '/' is matched
// against path and query, any other against the whole URL. No patterns: every page.
function pageAllowed(patterns, href) {
  var url = new URL(href), path = url.pathname + url.search, shown = null;
  function match(p) {
    var re = new RegExp('^' + p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
    return re.test(p.charAt(0) === '/' ? path : href);
  }
  for (var i = 0; i < (patterns || []).length; i++) {
    var p = patterns[i];
    if (p.charAt(0) === '!') { if (match(p.slice(1))) return false; } else shown = shown || match(p);
  }
  return shown !== false;
}

function displayAllowed(rule, utcTimezone, now) {
  if (!rule) return true;
  var c = wall(now, offsetMinutes(utcTimezone));
  return rule.days.indexOf(c.day) >= 0 && c.hour >= rule.fromHour && c.hour < rule.toHour;
}

// The working hours of the coming week (each once), as slots {at: ms, value: 'YYYY-MM-DD HH:00:00' local to it}.
function slots(schedule, now, limit) {
  var offset = offsetMinutes(schedule.utcTimezone), open = {}, out = [];
  (schedule.hours || []).forEach(function (c) { open[c.dayOfWeek + '-' + c.hour] = 1; });
  for (var t = Math.ceil(now / HOUR) * HOUR, end = now + 7 * 24 * HOUR; t < end && out.length < limit; t += HOUR) {
    var c = wall(t, offset);
    if (open[c.day + '-' + c.hour] && t - now >= 5 * MIN) {
      out.push({at: t, value: c.date + ' ' + (c.hour < 10 ? '0' : '') + c.hour + ':00:00'});
    }
  }
  return out;
}

// -- the element

function el(tag, attrs, kids) {
  var e = d.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) {
    if (attrs[k] !== null && attrs[k] !== false) e.setAttribute(k, attrs[k] === true ? '' : attrs[k]);
  });
  (kids || []).forEach(function (k) { if (k) e.append(k); });  // strings become text nodes, never markup
  return e;
}

var CSS = ':host{all:initial;position:fixed;bottom:20px;z-index:2147483000;font:15px/1.4 system-ui,sans-serif;color:#1b1f24}' +
  ':host([data-position=bottom-right]){right:20px}:host([data-position=bottom-left]){left:20px}' +
  ':host([data-preview]){position:absolute}:host([data-preview]) [part=dialog]{width:min(340px,calc(100vw - 120px))}' +
  '*{box-sizing:border-box;font:inherit}' +
  '[part=launcher]{width:60px;height:60px;border-radius:50%;border:0;cursor:pointer;background:var(--c);color:var(--t);box-shadow:0 4px 14px rgba(0,0,0,.3);display:grid;place-items:center;transition:transform .2s}' +
  '[part=launcher]:hover{transform:scale(1.06)}' +
  'svg{width:28px;height:28px;fill:currentColor}' +
  'button:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid #1b1f24;outline-offset:2px;box-shadow:0 0 0 5px #fff}' +
  '[part=dialog]{position:absolute;bottom:76px;width:min(340px,calc(100vw - 40px));background:#fff;border-radius:12px;box-shadow:0 10px 40px rgba(0,0,0,.3);padding:20px;animation:pz-in .18s ease-out}' +
  ':host([data-position=bottom-right]) [part=dialog]{right:0}:host([data-position=bottom-left]) [part=dialog]{left:0}' +
  '[part=dialog][hidden]{display:none}' +
  '@keyframes pz-in{from{opacity:0;transform:translateY(8px)}}' +
  '@media (prefers-reduced-motion:reduce){[part=dialog]{animation:none}[part=launcher]{transition:none}[part=launcher]:hover{transform:none}}' +
  'h2{margin:0 36px 12px 0;font-size:18px;font-weight:600;overflow-wrap:anywhere}[part=consent]{overflow-wrap:anywhere}' +
  '[part=close]{position:absolute;top:10px;right:10px;width:36px;height:36px;border:0;border-radius:50%;background:transparent;color:#1b1f24;font-size:24px;line-height:1;cursor:pointer}' +
  'label{display:block;margin:10px 0 4px;font-weight:600;font-size:14px}' +
  'label small{font-weight:400;color:#4a525c}' +
  'input,select{display:block;width:100%;padding:10px 12px;border:1px solid #6b7480;border-radius:8px;background:#fff;color:#1b1f24;font-size:16px}' +
  'input[aria-invalid=true]{border-color:#b3261e;border-width:2px}' +
  '[part=error]{color:#b3261e;font-size:13px;margin-top:4px}[part=error]:empty{display:none}' +
  '[part=note],[part=consent]{font-size:13px;color:#4a525c;margin:10px 0 0}' +
  '[part=submit]{display:block;width:100%;margin-top:14px;padding:12px;border:0;border-radius:8px;background:var(--c);color:var(--t);font-weight:600;font-size:16px;cursor:pointer}' +
  '[part=submit]:disabled{opacity:.7;cursor:progress}' +
  '[part=status]{margin:12px 0 0;font-weight:600}[part=status]:empty{display:none}' +
  'form[hidden]{display:none}';

var PHONE_ICON = 'M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2c.3-.3.7-.4 1-.2 1.1.4 2.3.6 3.6.6.6 0 1 .4 1 1V20c0 .6-.4 1-1 1A17 17 0 0 1 3 4c0-.6.4-1 1-1h3.5c.6 0 1 .4 1 1 0 1.3.2 2.5.6 3.6.1.3 0 .7-.2 1z';

class PerezvonWidget extends w.HTMLElement {
  connectedCallback() {
    var cfg = this.config;
    if (this.root || !cfg) return;
    this.root = this.attachShadow({mode: 'open'});
    var pick = (cfg.widgets || []).filter(function (x) {
      return cfg.preview || (pageAllowed(x.ui.pages, w.location.href) &&
        displayAllowed(x.ui.displaySchedule, x.utcTimezone, Date.now()));
    })[0];
    if (!pick) return;
    var self = this;
    setTimeout(function () { self.draw(cfg, pick); }, cfg.preview ? 0 : (pick.ui.delaySeconds || 0) * 1e3);
  }

  draw(cfg, widget) {
    var self = this, ui = widget.ui, t = TEXT[ui.language] || TEXT.ru, root = this.root;
    this.cfg = cfg; this.widget = widget; this.t = t;
    this.setAttribute('data-position', ui.position);
    if (cfg.preview) this.setAttribute('data-preview', '');
    this.style.setProperty('--c', ui.color);
    this.style.setProperty('--t', textOn(ui.color));
    var icon = d.createElementNS('http://www.w3.org/2000/svg', 'svg');
    icon.setAttribute('viewBox', '0 0 24 24');
    icon.setAttribute('aria-hidden', 'true');
    icon.appendChild(d.createElementNS('http://www.w3.org/2000/svg', 'path')).setAttribute('d', PHONE_ICON);
    this.launcher = el('button', {type: 'button', part: 'launcher', 'aria-label': t.launcher,
      'aria-expanded': 'false', 'aria-controls': 'pz-dialog'}, [icon]);
    this.phone = el('input', {id: 'pz-phone', type: 'tel', name: 'phone', autocomplete: 'tel', inputmode: 'tel',
      required: true, 'aria-describedby': 'pz-phone-error', maxlength: '24'});
    this.phoneError = el('div', {id: 'pz-phone-error', part: 'error'});
    var kids = [el('label', {for: 'pz-phone'}, [t.phone]), this.phone, this.phoneError];
    if (ui.nameField && ui.nameField !== 'off') {
      var need = ui.nameField === 'required';
      this.name = el('input', {id: 'pz-name', type: 'text', name: 'name', autocomplete: 'name', maxlength: '100',
        required: need, 'aria-describedby': 'pz-name-error'});
      this.nameError = el('div', {id: 'pz-name-error', part: 'error'});
      kids.unshift(el('label', {for: 'pz-name'}, [t.name, need ? null : ' ', need ? null : el('small', {}, [t.optional])]),
        this.name, this.nameError);
    }
    this.when = el('div', {part: 'when'});
    this.submit = el('button', {type: 'submit', part: 'submit'}, [ui.buttonText || t.submit]);
    kids.push(this.when, ui.consentText ? el('p', {part: 'consent'}, [ui.consentText]) : null, this.submit);
    this.form = el('form', {part: 'form', novalidate: true}, kids);
    this.status = el('p', {part: 'status', role: 'status', 'aria-live': 'polite'});
    this.closer = el('button', {type: 'button', part: 'close', 'aria-label': t.close}, ['×']);
    this.dialog = el('div', {id: 'pz-dialog', part: 'dialog', role: 'dialog', 'aria-modal': 'true',
      'aria-labelledby': 'pz-title', hidden: true}, [el('h2', {id: 'pz-title'}, [ui.title || t.title]), this.closer,
      this.form, this.status]);
    root.replaceChildren(this.launcher, this.dialog);
    // A constructed sheet passes a page's strict CSP (style-src without 'unsafe-inline'); else a <style>.
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) { root.prepend(el('style', {}, [CSS])); }

    this.launcher.addEventListener('click', function () { self.toggle(self.dialog.hidden); });
    this.closer.addEventListener('click', function () { self.toggle(false); });
    root.addEventListener('keydown', function (e) { if (!self.dialog.hidden) self.keys(e); });
    this.phone.addEventListener('input', function (e) { self.typed(e); });
    this.form.addEventListener('submit', function (e) { e.preventDefault(); self.send(); });
    if (cfg.preview && cfg.open) this.toggle(true, true);
  }

  toggle(open, quietly) {
    this.dialog.hidden = !open;
    this.launcher.setAttribute('aria-expanded', String(open));
    if (!open) return this.launcher.focus();
    if (!this.looked && !this.cfg.preview) this.lookUp();
    if (this.cfg.preview && this.cfg.closed && !this.picker) this.showClosed(this.cfg.closed);
    if (!quietly) (this.form.hidden ? this.closer : this.name || this.phone).focus();
  }

  // Escape closes; Tab stays inside the dialog while it is open (a focus trap).
  keys(e) {
    if (e.key === 'Escape') { e.preventDefault(); return this.toggle(false); }
    if (e.key !== 'Tab') return;
    var all = [].filter.call(this.dialog.querySelectorAll('button,input,select'), function (x) {
      return !x.disabled && x.getClientRects().length > 0;
    });
    var first = all[0], last = all[all.length - 1], now = this.root.activeElement;
    if (e.shiftKey && now === first) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && now === last) { e.preventDefault(); first.focus(); }
  }

  // Shown as typed: once the number is whole, it is rewritten in international form.
  typed(e) {
    var plan = this.widget.phone, v = this.phone.value.replace(/[^\d+()\- ]/g, '');
    if (e && e.inputType && e.inputType.indexOf('delete') === 0) return;
    var x = complete(v, plan) && normalise(v, plan);
    this.phone.value = x ? pretty(x, plan) : v;
    if (x) this.fail(this.phone, this.phoneError, '');
  }

  // Working mode and schedule, once per opening of the page: a closed call center offers slots.
  lookUp() {
    var self = this;
    this.looked = true;
    w.ctw.getRouteKeyData(this.widget.routeKey, function (ok, data) {
      if (!ok || !data.widgetFound) {
        self.looked = false;
        if (ok) { self.form.hidden = true; self.say(self.t.unavailable); }
        return;
      }
      var info = data.widgetData;
      if (info.callCenterWorkingMode === 'non_working_hours') self.showClosed(info);
    });
  }

  showClosed(info) {
    var t = this.t, list = slots(info.workingSchedule, Date.now(), 24);
    if (!info.collectNonWorkingRequests) { this.form.hidden = true; return this.say(t.closedNoRequests); }
    this.slotAt = {};
    var options = [el('option', {value: ''}, [t.soonest])].concat(list.map(function (s) {
      this.slotAt[s.value] = s.at;
      return el('option', {value: s.value}, [this.moment(s.at)]);
    }, this));
    this.picker = el('select', {id: 'pz-slot', name: 'scheduleTime'}, options);
    this.when.replaceChildren(el('p', {part: 'note'}, [t.closed]), el('label', {for: 'pz-slot'}, [t.when]), this.picker);
  }

  // A moment in the visitor's own clock: 'today at 09:00', 'tomorrow at 09:00', 'Mon, 7 Dec at 09:00'.
  moment(at) {
    var t = this.t, lang = this.widget.ui.language === 'en' ? 'en-GB' : 'ru-RU', x = new Date(at);
    var days = Math.round((new Date(x).setHours(0, 0, 0, 0) - new Date().setHours(0, 0, 0, 0)) / (24 * HOUR));
    var day = days === 0 ? t.today : days === 1 ? t.tomorrow :
      x.toLocaleDateString(lang, {weekday: 'short', day: 'numeric', month: 'short'});
    return day + t.at + x.toLocaleTimeString(lang, {hour: '2-digit', minute: '2-digit'});
  }

  fail(input, box, message) {
    box.textContent = message;
    if (message) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
  }

  say(text) { this.status.textContent = text; }

  send() {
    var self = this, t = this.t, digits = normalise(this.phone.value, this.widget.phone), fields = [];
    var name = this.name ? this.name.value.trim() : '';
    this.fail(this.phone, this.phoneError, digits ? '' : t.badPhone);
    if (this.name) this.fail(this.name, this.nameError, !name && this.name.required ? t.needName : '');
    var wrong = this.root.querySelector('[aria-invalid=true]');
    if (wrong) return wrong.focus();
    if (name) fields.push({name: t.nameField, value: name});
    this.submit.disabled = true;
    this.say(t.sending);
    if (this.cfg.preview) return this.answer(true, {});
    w.ctw.createRequest(this.widget.routeKey, digits, fields, function (ok, data) { self.answer(ok, data); },
      this.picker && this.picker.value || null);
  }

  answer(ok, data) {
    var t = this.t;
    this.submit.disabled = false;
    if (!ok) {
      var type = data && data.type;
      if (type === 'validation_error' && /phone/.test(JSON.stringify(data.details))) {
        this.say('');
        this.fail(this.phone, this.phoneError, t.badPhone);
        return this.phone.focus();
      }
      return this.say(/throttle/.test(type) ? t.throttled : type === 'request_phone_blacklisted' ? t.blacklisted : t.error);
    }
    this.form.hidden = true;
    this.closer.focus();
    this.request = data;
    var at = this.picker && this.slotAt[this.picker.value];
    this.watch({status: 'pending', dueAt: new Date(at || Date.now()).toISOString()});
  }

  // The visitor's own request, read with the token createRequest gave: fast while a call is near.
  watch(state) {
    var self = this, t = this.t, due = Date.parse(state.dueAt || state.nextAttemptAt) || 0, near = due - Date.now() < 2 * MIN;
    if (state.status === 'dialing') this.say(state.operatorOnLine ? t.operator : t.calling);
    else if (DONE[state.status]) {
      this.say(t[state.status]);
      this.form.hidden = state.status === 'completed';  // else they may ask again
    }
    else this.say(due && !near ? t.willCall + this.moment(due) : t.soon);
    var r = this.request || {};
    if (DONE[state.status] || !r.statusToken || (this.polls = (this.polls || 0) + 1) > 400) return;
    setTimeout(function () {
      fetch(self.cfg.base + '/api/widget/v1/request-status', {method: 'POST', mode: 'cors', credentials: 'omit',
        body: JSON.stringify({site: self.cfg.site, callbackRequestId: r.callbackRequestId, statusToken: r.statusToken})})
        .then(function (x) { return x.ok ? x.json() : state; })
        .then(function (next) { self.watch(next); }, function () { self.watch(state); });
    }, near || state.status === 'dialing' ? 3e3 : 6e4);
  }
}

PerezvonWidget.rules = {normalise: normalise, complete: complete, pretty: pretty, textOn: textOn, contrast: contrast,
  pageAllowed: pageAllowed, displayAllowed: displayAllowed, slots: slots};
w.customElements.define('perezvon-widget', PerezvonWidget);
})(window, document);

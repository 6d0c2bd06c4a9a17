// Passerelle console: enhances the server-rendered pages. Every page works without this
// script; with it, a field is saved without reloading the page, conditional fields follow
// the choice as it changes, and Test runs with the values on the page (saved or not) and
// shows the steps in place. No inline code: the Content-Security-Policy forbids it.
(function () {
  'use strict';

  var HEADERS = { 'X-Requested-With': 'passerelle-console' };

  // Texts in the page's language, written by the server on <body> as data-t-*; `%s` is
  // where a value goes. English stands in if a text is missing.
  var FALLBACK = {
    saving: 'Saving…', clearing: 'Clearing…', saved: 'Saved.', cleared: 'Cleared.',
    answered: 'The server answered %s. Reload the page and try again.',
    unreachable: 'The server could not be reached (%s).',
    testing: 'Testing…', testingUnsaved: 'Testing with %s unsaved value(s)…',
    secretSet: 'set — type a new value to replace it', secretUnset: 'not set',
    sessionEnded: 'Your session has ended: reload the page and sign in again.',
    formExpired: 'This page has expired or did not come from this console: reload it and try again.'
  };
  function t(key, value) {
    var texts = document.body ? document.body.dataset : {};
    var name = 't' + key.charAt(0).toUpperCase() + key.slice(1);
    var text = texts[name] || FALLBACK[key] || key;
    return value === undefined ? text : text.replace('%s', value);
  }

  function control(div) {
    return div.querySelector('[name="value"]:not([type="hidden"])');
  }

  // The current value of a field's control, as JSON, for conditions.
  function valueOf(div) {
    var c = control(div);
    if (!c) return undefined;
    switch (div.dataset.kind) {
      case 'boolean':
        return c.checked;
      case 'choice':
        var o = c.selectedOptions[0];
        return o && o.dataset.value ? JSON.parse(o.dataset.value) : undefined;
      case 'integer':
      case 'number':
        return c.value === '' ? undefined : Number(c.value);
      default:
        return c.value;
    }
  }

  function values() {
    var out = {};
    document.querySelectorAll('.field[data-field]').forEach(function (div) {
      out[div.dataset.field] = valueOf(div);
    });
    return out;
  }

  function holds(div, prefix, current) {
    var tag = div.dataset[prefix + 'Tag'];
    if (!tag) return true;
    var allowed = JSON.parse(div.dataset[prefix + 'Values'] || '[]');
    var v = JSON.stringify(current[tag]);
    return allowed.some(function (a) { return JSON.stringify(a) === v; });
  }

  // Shows the fields whose tag has a matching value, marks them required, hides empty groups.
  function applyConditions() {
    var current = values();
    document.querySelectorAll('.field[data-show-tag]').forEach(function (div) {
      div.hidden = !holds(div, 'show', current);
    });
    document.querySelectorAll('.field[data-require-tag]').forEach(function (div) {
      var needed = holds(div, 'require', current);
      var mark = div.querySelector('.required');
      if (mark) mark.hidden = !needed;
      var c = control(div);
      if (c) {
        if (needed) c.setAttribute('aria-required', 'true');
        else c.removeAttribute('aria-required');
      }
    });
    document.querySelectorAll('fieldset.group').forEach(function (fs) {
      var fields = fs.querySelectorAll('.field');
      fs.hidden = fields.length > 0 && !Array.prototype.some.call(fields, function (d) { return !d.hidden; });
    });
  }

  function setRevision(revision) {
    document.querySelectorAll('input[name="revision"]').forEach(function (i) { i.value = revision; });
    var shown = document.getElementById('revision');
    if (shown) shown.textContent = revision;
  }

  function formBody(form, submitter) {
    var data;
    try {
      data = new FormData(form, submitter);
    } catch (e) {
      data = new FormData(form);
      if (submitter && submitter.name) data.append(submitter.name, submitter.value);
    }
    return new URLSearchParams(data);
  }

  // The server's JSON message is in the page's language, except the refusals decided before
  // the console's code runs (no session, an expired form), which the script words itself.
  function errorMessage(res, data) {
    if (data && data.code === 'unauthenticated') return t('sessionEnded');
    if (data && (data.code === 'csrf_failed' || data.code === 'origin_mismatch')) return t('formExpired');
    if (data && data.message) return data.message;
    return t('answered', res.status);
  }

  // Marks the control's current value as its saved value (so it is not "unsaved" any more).
  function markSaved(div, data) {
    var c = control(div);
    if (!c) return;
    var kind = div.dataset.kind;
    if (kind === 'secret') {
      c.value = '';
      c.placeholder = data.state === 'set' ? t('secretSet') : t('secretUnset');
    } else if (kind === 'boolean') {
      c.checked = data.value === true;
      c.defaultChecked = c.checked;
    } else if (kind === 'choice') {
      var text = data.text === null || data.text === undefined ? '' : data.text;
      Array.prototype.forEach.call(c.options, function (o) {
        o.selected = o.value === text;
        o.defaultSelected = o.selected;
      });
    } else {
      c.value = data.text === null || data.text === undefined ? '' : data.text;
      c.defaultValue = c.value;
    }
  }

  function saveField(form, submitter) {
    var div = form.closest('.field');
    var err = form.querySelector('.error');
    var saved = form.querySelector('.saved');
    var c = control(div);
    var clearing = submitter && submitter.value === 'clear';
    err.textContent = '';
    saved.textContent = clearing ? t('clearing') : t('saving');
    fetch(form.getAttribute('action'), {
      method: 'POST',
      headers: HEADERS,
      body: formBody(form, submitter),
      credentials: 'same-origin'
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        saved.textContent = '';
        if (!res.ok) {
          err.textContent = errorMessage(res, data);
          if (c) {
            c.setAttribute('aria-invalid', 'true');
            c.focus();
          }
          return;
        }
        if (c) c.removeAttribute('aria-invalid');
        setRevision(data.revision);
        var state = div.querySelector('.state');
        if (state) {
          state.textContent = data.state_text;
          state.className = 'state state-' + data.state;
        }
        var clear = form.querySelector('button[value="clear"]');
        if (clear) clear.hidden = !data.can_clear;
        markSaved(div, data);
        saved.textContent = clearing ? t('cleared') : t('saved');
        applyConditions();
      });
    }).catch(function (e) {
      saved.textContent = '';
      err.textContent = t('unreachable', e.message);
    });
  }

  function isDirty(div) {
    var c = control(div);
    if (!c) return false;
    switch (div.dataset.kind) {
      case 'secret':
        return c.value !== '';
      case 'boolean':
        return c.checked !== c.defaultChecked;
      case 'choice':
        return Array.prototype.some.call(c.options, function (o) { return o.selected !== o.defaultSelected; });
      default:
        return c.value !== c.defaultValue;
    }
  }

  function runTest(form, submitter) {
    var section = document.getElementById('test-result');
    var button = form.querySelector('button');
    var body = formBody(form, submitter);
    var unsaved = 0;
    document.querySelectorAll('.field[data-field]').forEach(function (div) {
      if (div.hidden || !isDirty(div)) return;
      var c = control(div);
      body.append('v.' + div.dataset.field, div.dataset.kind === 'boolean' ? String(c.checked) : c.value);
      unsaved += 1;
    });
    button.disabled = true;
    section.setAttribute('aria-busy', 'true');
    var status = document.createElement('p');
    status.className = 'testing';
    status.textContent = unsaved ? t('testingUnsaved', unsaved) : t('testing');
    section.querySelectorAll('.report, .testing, .problem, .desc').forEach(function (n) { n.remove(); });
    section.appendChild(status);
    fetch(form.getAttribute('action'), {
      method: 'POST',
      headers: HEADERS,
      body: body,
      credentials: 'same-origin'
    }).then(function (res) {
      if (res.ok) {
        return res.text().then(function (html) { section.innerHTML = html; });
      }
      return res.json().catch(function () { return null; }).then(function (data) {
        status.className = 'problem';
        status.setAttribute('role', 'alert');
        status.textContent = errorMessage(res, data);
      });
    }).catch(function (e) {
      status.className = 'problem';
      status.textContent = t('unreachable', e.message);
    }).then(function () {
      button.disabled = false;
      section.removeAttribute('aria-busy');
    });
  }

  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
      return;
    }
    var kind = form.dataset.enhance;
    if (!kind || !window.fetch) return;
    e.preventDefault();
    if (kind === 'field') saveField(form, e.submitter);
    else if (kind === 'test') runTest(form, e.submitter);
  });

  document.addEventListener('change', function (e) {
    if (e.target.closest && e.target.closest('.field')) applyConditions();
  });

  document.documentElement.classList.add('js');
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', applyConditions);
  } else {
    applyConditions();
  }
})();

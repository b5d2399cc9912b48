// / - the dashboard: your status and picker, your status message, Do Not
// Disturb (now and on a weekly schedule), your time zone and privacy, and
// colleagues online now.
//
// The settings come from GET /api/me ("settings"); each control writes
// with PUT /api/status, /api/dnd or /api/profile, whose answer is the new
// /api/me, and shows the server's error next to itself. Changes made
// elsewhere (another tab, an expiry, the schedule) arrive as the caller's
// own presence events, after which /api/me is read again.
import {
  api, h, person, rememberApi, refreshPerson, startPage, knownMember, knownMembers, sortList,
  clearsText, whenText, zoneTime, browserZone, onClock,
} from '../app.js';

const CHOICES = [
  ['ONLINE', 'Online', 'Everyone sees you as Online while you are active.'],
  ['AWAY', 'Away', 'Everyone sees you as Away until you change it.'],
  ['BUSY', 'Busy', 'Everyone sees you as Busy until you change it.'],
  ['OFFLINE', 'Appear offline', 'Everyone sees you as Offline; you still see them.'],
];

const MAX_MESSAGE = 100;  // code points (docs/protocol.md)

// The expiry choices; "custom" is the date-and-time input.
const EXPIRIES = [
  ['30m', '30 minutes'], ['1h', '1 hour'], ['4h', '4 hours'], ['today', 'Today'],
  ['week', 'This week'], ['never', 'Never'], ['custom', 'Choose a date and time…'],
];
const EXPIRY_LABEL = Object.fromEntries(EXPIRIES);

const EMOJI = [
  ['📅', 'calendar'], ['🗓️', 'spiral calendar'], ['🚗', 'car'], ['🚆', 'train'], ['🤒', 'sick'],
  ['🌴', 'palm tree'], ['🏠', 'house'], ['💻', 'laptop'], ['🎧', 'headphones'], ['📞', 'telephone'],
  ['☕', 'coffee'], ['🍔', 'lunch'], ['🎯', 'focus'], ['✈️', 'airplane'], ['🏃', 'running'], ['😴', 'sleeping'],
];

const DAYS = [['mon', 'Mon'], ['tue', 'Tue'], ['wed', 'Wed'], ['thu', 'Thu'], ['fri', 'Fri'],
  ['sat', 'Sat'], ['sun', 'Sun']];

let picker, hint, pickerMsg, count, countLabel, onlineList, emptyNote, me, account, presence;

// ---- small helpers -------------------------------------------------------

function codePoints(s) {
  return Array.from(String(s)).length;
}

// A "datetime-local" value ("2026-12-08T17:30:05") for ms, in this
// browser's zone.
function localInputValue(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' +
    p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
}

// The moment a "datetime-local" value names here, NaN if none.
function fromLocalInput(v) {
  return v ? new Date(v).getTime() : NaN;
}

// A result line: role=status for good news, an error (role=alert) with the
// server's code in data-code.
function resultLine(id) {
  const note = h('p', { id: id + '-note', class: 'picker-msg', role: 'status', 'aria-live': 'polite' });
  const err = h('p', { id: id + '-error', class: 'form-error', role: 'alert', hidden: true });
  return {
    note, err,
    ok(text) {
      err.hidden = true;
      err.textContent = '';
      delete err.dataset.code;
      note.textContent = text;
    },
    fail(e) {
      note.textContent = '';
      err.hidden = false;
      err.textContent = e.message || String(e);
      if (e.code)
        err.dataset.code = e.code;
      else
        delete err.dataset.code;
    },
  };
}

function check(id, label, props = {}) {
  const box = h('input', { type: 'checkbox', id, ...props });
  return { box, el: h('label', { class: 'check', for: id }, box, h('span', { text: label })) };
}

// ---- the status picker --------------------------------------------------

function setPicker(manual) {
  const v = manual || 'ONLINE';
  if (picker.value !== v)
    picker.value = v;
  hint.textContent = CHOICES.find(([k]) => k === v)[2];
}

// A new /api/me (a PUT's answer, or read again): the caller's card and
// every control that shows a setting.
const settingsViews = [];

function setAccount(next) {
  if (!next || typeof next !== 'object')
    return;
  account = next;
  refreshPerson(next);
  if ('manual' in next)
    setPicker(next.manual);
  for (const fn of settingsViews)
    fn(account.settings || {});
}

let rereading = null;
let rereadAgain = false;

// The caller's own event said something changed: read /api/me again (one
// request at a time; one more if events came meanwhile).
function reread() {
  if (rereading) {
    rereadAgain = true;
    return;
  }
  rereading = api('/api/me').then(setAccount, () => {}).finally(() => {
    rereading = null;
    if (rereadAgain) {
      rereadAgain = false;
      reread();
    }
  });
}

// ---- status message -------------------------------------------------------

function messageSection(presets) {
  const out = resultLine('message');
  const text = h('input', {
    id: 'message-text', name: 'message', type: 'text', autocomplete: 'off',
    placeholder: 'What’s your status?', 'aria-describedby': 'message-count',
  });
  const counter = h('span', { id: 'message-count', class: 'char-count', 'aria-live': 'polite' });
  const emoji = h('input', {
    id: 'message-emoji', name: 'emoji', type: 'text', autocomplete: 'off', class: 'emoji-input',
    placeholder: '🙂', 'aria-label': 'Emoji',
  });
  const grid = h('div', { id: 'emoji-grid', class: 'emoji-grid', role: 'group', 'aria-label': 'Pick an emoji', hidden: true },
    EMOJI.map(([e, name]) => h('button', { type: 'button', class: 'emoji-choice', 'aria-label': name, title: name, text: e,
      onclick: () => { emoji.value = e; grid.hidden = true; toggle.setAttribute('aria-expanded', 'false'); text.focus(); } })),
    h('button', { type: 'button', class: 'emoji-choice emoji-none', text: 'None',
      onclick: () => { emoji.value = ''; grid.hidden = true; toggle.setAttribute('aria-expanded', 'false'); } }));
  const toggle = h('button', {
    type: 'button', id: 'emoji-toggle', class: 'btn emoji-toggle', 'aria-expanded': 'false',
    'aria-controls': 'emoji-grid', 'aria-label': 'Choose an emoji', text: '☺',
  });
  toggle.addEventListener('click', () => {
    grid.hidden = !grid.hidden;
    toggle.setAttribute('aria-expanded', String(!grid.hidden));
  });

  const expires = h('select', { id: 'message-expires', name: 'expires' },
    EXPIRIES.map(([v, label]) => h('option', { value: v, text: label })));
  const until = h('input', { id: 'message-until', type: 'datetime-local', step: '1', 'aria-label': 'Clear at', hidden: true });
  const status = h('select', { id: 'message-status', name: 'status' },
    h('option', { value: '', text: 'No change' }),
    CHOICES.filter(([v]) => v !== 'ONLINE').map(([v, label]) => h('option', { value: v, text: label })));
  const clearStatus = check('message-clear-status', 'Also clear my status then');

  const save = h('button', { type: 'submit', id: 'message-save', class: 'btn btn-primary', text: 'Set message' });
  const clearBtn = h('button', { type: 'button', id: 'message-clear', class: 'btn', text: 'Clear' });

  const showCount = () => {
    const n = codePoints(text.value);
    counter.textContent = n + '/' + MAX_MESSAGE;
    counter.classList.toggle('over', n > MAX_MESSAGE);
  };
  const showUntil = () => {
    until.hidden = expires.value !== 'custom';
    if (!until.hidden && !until.value)
      until.value = localInputValue(Date.now() + 3600 * 1000).slice(0, 16);
    until.min = localInputValue(Date.now()).slice(0, 16);
  };
  text.addEventListener('input', showCount);
  expires.addEventListener('change', showUntil);

  // What the form says now, as the body of PUT /api/status.
  const body = () => {
    let exp = expires.value;
    if (exp === 'custom') {
      exp = fromLocalInput(until.value);
      if (!Number.isFinite(exp))
        throw Object.assign(new Error('Choose the date and time it clears.'), { code: 'invalid_expiry' });
    }
    const message = { text: text.value.trim(), expires: exp, clear_status: clearStatus.box.checked };
    if (emoji.value.trim())
      message.emoji = emoji.value.trim();
    const b = { message };
    if (status.value)
      b.status = status.value;
    return b;
  };

  const busy = (on) => {
    for (const b of form.querySelectorAll('button'))
      b.disabled = on;
  };

  const send = async () => {
    let b;
    try {
      if (!text.value.trim())
        throw Object.assign(new Error('Write a message, or pick one of the suggestions.'), { code: 'empty' });
      b = body();
    } catch (e) {
      out.fail(e);
      return;
    }
    busy(true);
    try {
      const next = await api('/api/status', { method: 'PUT', body: b });
      setAccount(next);
      const m = next && next.settings && next.settings.message;
      const when = m && m.expires != null ? ' ' + clearsText(m.expires) + '.' : '';
      out.ok('Message set.' + when);
    } catch (e) {
      out.fail(e);
    } finally {
      busy(false);
    }
  };

  const form = h('form', { id: 'message-form', class: 'message-form', 'aria-labelledby': 'message-h', novalidate: true },
    h('h3', { id: 'message-h', class: 'sub-h', text: 'Status message' }),
    h('div', { class: 'message-row' },
      h('div', { class: 'emoji-field' }, emoji, toggle),
      h('label', { for: 'message-text', class: 'visually-hidden', text: 'Status message' }),
      text),
    h('div', { class: 'message-under' }, counter),
    grid,
    presets.length ? h('div', { class: 'presets', role: 'group', 'aria-label': 'Suggestions' },
      presets.map((p, i) => {
        const b = h('button', { type: 'button', class: 'preset', dataset: { preset: String(i) } },
          p.emoji ? h('span', { class: 'preset-emoji', 'aria-hidden': 'true', text: p.emoji }) : null,
          h('span', { class: 'preset-text', text: p.text }),
          h('span', { class: 'preset-expiry', text: EXPIRY_LABEL[p.expires] || String(p.expires) }));
        // One click: the form takes the suggestion and it is set.
        b.addEventListener('click', () => {
          text.value = p.text;
          emoji.value = p.emoji || '';
          expires.value = EXPIRY_LABEL[p.expires] ? p.expires : 'never';
          showCount();
          showUntil();
          send();
        });
        return b;
      })) : null,
    h('div', { class: 'field-row' },
      h('div', { class: 'field' }, h('label', { for: 'message-expires', text: 'Clear after' }), expires, until),
      h('div', { class: 'field' }, h('label', { for: 'message-status', text: 'Status with it' }), status)),
    clearStatus.el,
    h('div', { class: 'actions' }, save, clearBtn),
    out.err, out.note);

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    send();
  });
  clearBtn.addEventListener('click', async () => {
    busy(true);
    try {
      setAccount(await api('/api/status', { method: 'PUT', body: { message: null } }));
      text.value = '';
      emoji.value = '';
      showCount();
      out.ok('Message cleared.');
    } catch (e) {
      out.fail(e);
    } finally {
      busy(false);
    }
  });

  // The form starts with the message set now, if any.
  const m = (account.settings || {}).message;
  if (m) {
    text.value = m.text || '';
    emoji.value = m.emoji || '';
    if (m.expires == null) {
      expires.value = 'never';
    } else {
      expires.value = 'custom';
      until.value = localInputValue(m.expires);
    }
    clearStatus.box.checked = !!m.clear_status;
  } else {
    expires.value = '1h';
  }
  showCount();
  showUntil();
  return form;
}

// ---- Do Not Disturb -------------------------------------------------------

function scheduleRow(entry, onChange) {
  const days = new Set(entry ? entry.days : ['mon', 'tue', 'wed', 'thu', 'fri']);
  const allDay = !!entry && entry.start === '00:00' && entry.end === '24:00';
  const id = 'sched-' + Math.random().toString(36).slice(2, 8);
  const start = h('input', { type: 'time', class: 'sched-start', id: id + '-start', value: allDay ? '00:00' : (entry ? entry.start : '18:00') });
  // type=time has no 24:00: an end at midnight is 00:00 (the next day).
  const endValue = entry ? (entry.end === '24:00' ? '00:00' : entry.end) : '09:00';
  const end = h('input', { type: 'time', class: 'sched-end', id: id + '-end', value: endValue });
  const whole = h('input', { type: 'checkbox', class: 'sched-all-day', id: id + '-all' });
  whole.checked = allDay;
  const times = h('div', { class: 'sched-times' },
    h('div', { class: 'sched-time' }, h('label', { for: id + '-start', text: 'From' }), start),
    h('div', { class: 'sched-time' }, h('label', { for: id + '-end', text: 'To' }), end));
  const syncWhole = () => {
    start.disabled = end.disabled = whole.checked;
    times.hidden = whole.checked;
  };
  whole.addEventListener('change', () => { syncWhole(); onChange(); });
  syncWhole();
  const remove = h('button', { type: 'button', class: 'btn btn-ghost sched-remove', text: 'Remove' });
  const row = h('li', { class: 'schedule-row' },
    h('fieldset', { class: 'sched-days' },
      h('legend', { class: 'visually-hidden', text: 'Days' }),
      DAYS.map(([v, label]) => {
        const box = h('input', { type: 'checkbox', value: v, id: id + '-' + v });
        box.checked = days.has(v);
        box.addEventListener('change', onChange);
        return h('label', { class: 'day', for: id + '-' + v }, box, h('span', { text: label }));
      })),
    times,
    h('div', { class: 'sched-foot' },
      h('label', { class: 'check', for: id + '-all' }, whole, h('span', { text: 'All day' })),
      remove));
  for (const i of [start, end])
    i.addEventListener('input', onChange);
  remove.addEventListener('click', () => { row.remove(); onChange(); });
  row.read = () => {
    const picked = [...row.querySelectorAll('.sched-days input:checked')].map((b) => b.value);
    return whole.checked ? { days: picked, start: '00:00', end: '24:00' }
      : { days: picked, start: start.value, end: end.value };
  };
  return row;
}

function dndSection() {
  const out = resultLine('dnd');
  const sched = resultLine('schedule');
  const state = h('p', { id: 'dnd-state', class: 'dnd-state', role: 'status', 'aria-live': 'polite' });
  const pause = (id, label, until) => {
    const b = h('button', { type: 'button', id, class: 'btn', text: label });
    b.addEventListener('click', () => putDnd({ until }, 'Notifications paused.'));
    return b;
  };
  const custom = h('input', { id: 'dnd-until', type: 'datetime-local', 'aria-label': 'Pause until' });
  custom.value = localInputValue(Date.now() + 2 * 3600 * 1000).slice(0, 16);
  const customBtn = h('button', { type: 'button', id: 'dnd-custom', class: 'btn', text: 'Pause until' });
  customBtn.addEventListener('click', () => {
    const ms = fromLocalInput(custom.value);
    if (!Number.isFinite(ms)) {
      out.fail(Object.assign(new Error('Choose when notifications come back.'), { code: 'invalid_dnd' }));
      return;
    }
    putDnd({ until: ms }, 'Notifications paused.');
  });
  const off = h('button', { type: 'button', id: 'dnd-off', class: 'btn', text: 'Turn off' });
  off.addEventListener('click', () => putDnd({ until: null }, 'Pause ended.'));
  const whileBusy = check('dnd-while-busy', 'Also whenever I’m Busy');
  whileBusy.box.addEventListener('change', () =>
    putDnd({ while_busy: whileBusy.box.checked },
      whileBusy.box.checked ? 'Do not disturb while you are Busy.' : 'Busy no longer turns it on.'));

  const rows = h('ul', { id: 'dnd-schedule', class: 'schedule', 'aria-label': 'Weekly schedule' });
  const empty = h('p', { class: 'muted small', text: 'No schedule: add the hours you do not want notifications.' });
  let dirty = false;
  const changed = () => {
    dirty = true;
    empty.hidden = rows.children.length > 0;
  };
  const add = h('button', { type: 'button', id: 'dnd-add-row', class: 'btn btn-ghost', text: 'Add hours' });
  add.addEventListener('click', () => {
    rows.append(scheduleRow(null, changed));
    changed();
  });
  const saveSched = h('button', { type: 'button', id: 'dnd-save-schedule', class: 'btn btn-primary', text: 'Save schedule' });
  const zoneHint = h('p', { class: 'hint', id: 'dnd-zone-hint' });

  const buttons = () => [...section.querySelectorAll('button')];
  async function putDnd(body, good, line = out) {
    for (const b of buttons())
      b.disabled = true;
    try {
      const next = await api('/api/dnd', { method: 'PUT', body });
      line.ok(good);
      if (line !== out)
        out.ok('');
      setAccount(next);
      return true;
    } catch (e) {
      line.fail(e);
      // The checkbox shows what is stored, not what was refused.
      whileBusy.box.checked = !!((account.settings || {}).dnd || {}).while_busy;
      return false;
    } finally {
      for (const b of buttons())
        b.disabled = false;
    }
  }
  saveSched.addEventListener('click', async () => {
    const schedule = [...rows.children].map((r) => r.read());
    if (await putDnd({ schedule }, schedule.length ? 'Schedule saved.' : 'Schedule removed.', sched))
      dirty = false;
  });

  const fillRows = (list) => {
    rows.replaceChildren(...(list || []).map((e) => scheduleRow(e, changed)));
    empty.hidden = rows.children.length > 0;
  };

  // refill: the schedule editor too (a new /api/me), unless it has edits
  // not saved yet; the clock only redraws the times.
  const show = (settings, refill, now = Date.now()) => {
    const d = settings.dnd || {};
    const mine = knownMember(me.user) || me;
    if (mine.dnd) {
      state.dataset.on = '1';
      state.textContent = mine.dnd.until != null
        ? 'Do not disturb is on until ' + whenText(mine.dnd.until, now).replace(/^at |^on /, '') + '.'
        : 'Do not disturb is on.';
    } else {
      state.dataset.on = '';
      state.textContent = 'Notifications are on.';
    }
    off.hidden = d.until == null;
    whileBusy.box.checked = !!d.while_busy;
    zoneHint.textContent = 'Every week, in your time zone (' + (settings.tz || 'UTC') + ').';
    if (refill && !dirty)
      fillRows(d.schedule);
  };
  settingsViews.push((s) => show(s, true));
  onClock(() => show(account.settings || {}, false));

  const section = h('section', { id: 'dnd', class: 'card', 'aria-labelledby': 'dnd-h' },
    h('h2', { id: 'dnd-h' }, h('span', { class: 'dnd-moon dnd-moon-h', 'aria-hidden': 'true' }), 'Do not disturb'),
    state,
    h('div', { class: 'btn-row', role: 'group', 'aria-label': 'Pause notifications' },
      pause('dnd-30m', '30 min', '30m'), pause('dnd-1h', '1 hour', '1h'),
      pause('dnd-tomorrow', 'Until tomorrow', 'today'), off),
    h('div', { class: 'btn-row' }, custom, customBtn),
    whileBusy.el,
    out.err, out.note,
    h('h3', { class: 'sub-h', text: 'Schedule' }),
    zoneHint, rows, empty,
    h('div', { class: 'btn-row' }, add, saveSched),
    sched.err, sched.note);
  show(account.settings || {}, true);
  return section;
}

// ---- time zone and privacy ------------------------------------------------

function zones(current) {
  let list = [];
  try {
    list = Intl.supportedValuesOf('timeZone');
  } catch (e) { /* older browsers: the current and this device's */ }
  const all = new Set(list);
  for (const z of [current, browserZone(), 'UTC'])
    if (z)
      all.add(z);
  return [...all].sort();
}

function profileSection() {
  const out = resultLine('profile');
  const settings = account.settings || {};
  const select = h('select', { id: 'tz-select', name: 'tz', 'aria-describedby': 'tz-now' },
    h('option', { value: '', text: 'Not set' }),
    zones(settings.tz).map((z) => h('option', { value: z, text: z.replace(/_/g, ' ') })));
  const now = h('p', { id: 'tz-now', class: 'hint' });
  const here = browserZone();
  const detect = h('button', { type: 'button', id: 'tz-detect', class: 'btn btn-ghost', text: 'Use this device’s zone (' + here + ')' });
  const hide = check('hide-last-seen', 'Hide when I was last seen');

  const put = async (body, good) => {
    select.disabled = hide.box.disabled = detect.disabled = true;
    try {
      setAccount(await api('/api/profile', { method: 'PUT', body }));
      out.ok(good);
    } catch (e) {
      out.fail(e);
      show(account.settings || {});  // back to what is stored
    } finally {
      select.disabled = hide.box.disabled = detect.disabled = false;
    }
  };
  select.addEventListener('change', () => put({ tz: select.value || null },
    select.value ? 'Time zone set to ' + select.value + '.' : 'Time zone cleared.'));
  detect.addEventListener('click', () => put({ tz: here }, 'Time zone set to ' + here + '.'));
  hide.box.addEventListener('change', () => put({ hide_last_seen: hide.box.checked },
    hide.box.checked ? 'Others no longer see when you were last seen.' : 'Others see when you were last seen.'));

  const show = (s, t = Date.now()) => {
    const tz = s.tz || '';
    if (tz && ![...select.options].some((o) => o.value === tz))
      select.append(h('option', { value: tz, text: tz }));
    if (select.value !== tz)
      select.value = tz;
    const time = zoneTime(tz, t);
    now.textContent = tz ? (time ? 'It is ' + time + ' there. ' : '') +
      'Others see your local time, and “Today” and schedules follow it.'
      : 'Without a zone, “Today” and schedules follow UTC.';
    detect.hidden = !here || here === tz;
    hide.box.checked = !!s.hide_last_seen;
  };
  settingsViews.push(show);
  onClock(() => show(account.settings || {}));
  show(settings);

  return h('section', { id: 'profile-settings', class: 'card', 'aria-labelledby': 'profile-h' },
    h('h2', { id: 'profile-h', text: 'Time zone and privacy' }),
    h('div', { class: 'field' }, h('label', { for: 'tz-select', text: 'Your time zone' }), select),
    now, detect,
    h('div', { class: 'field' }, hide.el),
    h('p', { class: 'hint', text: 'Others then see only your status, not when you were last online.' }),
    out.err, out.note);
}

// ---- colleagues, channels, projects -----------------------------------------

function others() {
  return knownMembers().filter((m) => m.user !== me.user);
}

function refreshOnline() {
  const present = others().filter((m) => m.status !== 'OFFLINE');
  count.textContent = String(present.length);
  countLabel.textContent = present.length === 1 ? 'colleague online' : 'colleagues online';
  const want = new Set(present.map((m) => m.user));
  for (const el of [...onlineList.children])
    if (!want.has(el.dataset.userId))
      el.remove();
  const have = new Set([...onlineList.children].map((el) => el.dataset.userId));
  for (const m of present)
    if (!have.has(m.user))
      onlineList.append(person(m, { variant: 'row', size: 'sm' }));
  sortList(onlineList);
  emptyNote.hidden = present.length > 0;
  refreshGroups();
}

const groups = [];  // {el, members: [user ids]} of the channel and project links

function refreshGroups() {
  for (const g of groups) {
    const online = g.members.filter((u) => (knownMember(u) || {}).status !== 'OFFLINE').length;
    g.el.textContent = g.members.length + (g.members.length === 1 ? ' member' : ' members') +
      (online ? ' · ' + online + ' online' : '');
  }
}

function groupLinks(items, base, empty) {
  if (!items.length)
    return h('p', { class: 'muted', text: empty });
  return h('ul', { class: 'link-list' }, items.map((g) => {
    const count = h('span', { class: 'muted small' });
    groups.push({ el: count, members: g.members.map((m) => String(m.user)) });
    return h('li', {},
      h('a', { href: base + encodeURIComponent(g.id), text: (base === '/channels/' ? '# ' : '') + g.name }),
      count);
  }));
}

// What the caller's own events say changed in its settings.
const OWN_REASONS = new Set(['message', 'expired', 'dnd', 'profile', 'manual']);

startPage({
  active: 'dashboard',
  load: async () => {
    const [presence, channels, projects, presets] = await Promise.all([
      api('/api/presence'), api('/api/channels'), api('/api/projects'),
      api('/api/status/presets').catch(() => ({ presets: [] }))]);
    return { presence, channels: channels.channels || [], projects: projects.projects || [],
             presets: Array.isArray(presets && presets.presets) ? presets.presets : [] };
  },
  render: (data, ctx) => {
    me = ctx.me;
    account = ctx.account || {};
    presence = ctx.presence;
    for (const m of data.presence.members || [])
      rememberApi(m);
    const main = document.getElementById('main');

    picker = h('select', { id: 'status-picker', name: 'status', 'aria-describedby': 'status-hint' },
      CHOICES.map(([v, label]) => h('option', { value: v, text: label })));
    hint = h('p', { id: 'status-hint', class: 'hint' });
    pickerMsg = h('p', { class: 'picker-msg', role: 'status', 'aria-live': 'polite' });
    setPicker(account.manual !== undefined ? account.manual : presence.manual);
    picker.addEventListener('change', async () => {
      const v = picker.value;
      hint.textContent = CHOICES.find(([k]) => k === v)[2];
      pickerMsg.textContent = '';
      pickerMsg.classList.remove('error');
      try {
        await presence.setStatus(v);
        pickerMsg.textContent = v === 'ONLINE' ? 'Status cleared.' : 'Status set to ' +
          CHOICES.find(([k]) => k === v)[1] + '.';
      } catch (e) {
        pickerMsg.textContent = 'Could not change your status: ' + e.message;
        pickerMsg.classList.add('error');
      }
    });
    presence.on('manual', setPicker);
    presence.on('hello', (hello) => setPicker(hello.manual));
    presence.on('presence', (f) => {
      if (String(f.user) === String(me.user) && OWN_REASONS.has(f.reason))
        reread();
    });

    count = h('span', { id: 'online-count', class: 'stat-number' });
    countLabel = h('span', { class: 'stat-label' });
    onlineList = h('ul', { id: 'online-list', class: 'person-list compact', 'aria-label': 'Colleagues online now' });
    emptyNote = h('p', { class: 'muted', text: 'Nobody else is around right now.' });

    main.replaceChildren(
      h('h1', { class: 'page-title', text: 'Hello, ' + me.name.split(/\s+/)[0] }),
      h('div', { class: 'dash-grid' },
        h('section', { id: 'you', class: 'card', 'aria-labelledby': 'you-h' },
          h('h2', { id: 'you-h', text: 'Your status' }),
          person(me, { tag: 'div', variant: 'profile', size: 'lg', link: false }),
          h('div', { class: 'field' },
            h('label', { for: 'status-picker', text: 'Set your status' }), picker),
          hint, pickerMsg,
          messageSection(data.presets)),
        h('section', { class: 'card', 'aria-labelledby': 'colleagues-h' },
          h('h2', { id: 'colleagues-h', text: 'Colleagues' }),
          h('p', { class: 'stat' }, count, ' ', countLabel),
          h('p', { class: 'hint', text: 'Counting everyone Online, Away or Busy.' }),
          onlineList, emptyNote),
        dndSection(),
        profileSection(),
        h('section', { class: 'card', 'aria-labelledby': 'channels-h' },
          h('h2', { id: 'channels-h' }, h('a', { href: '/channels', text: 'Channels' })),
          groupLinks(data.channels, '/channels/', 'No channels yet.')),
        h('section', { class: 'card', 'aria-labelledby': 'projects-h' },
          h('h2', { id: 'projects-h' }, h('a', { href: '/projects', text: 'Projects' })),
          groupLinks(data.projects, '/projects/', 'No projects yet.'))));
    refreshOnline();
  },
  onPresence: refreshOnline,
  onSnapshot: refreshOnline,
});

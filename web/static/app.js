// app.js - shared by the pages: API calls, DOM building (text only, never
// HTML from data), the header with navigation, connection state and logout,
// person rendering per the DOM contract, and the page start-up sequence.
import {
  connect, STATUS_LABELS, paintDot, paintPerson, personElements, updateUserStatus,
} from './presence.js';

export { STATUS_LABELS };
export const STATUS_ORDER = Object.freeze({ ONLINE: 0, BUSY: 1, AWAY: 2, OFFLINE: 3 });

// ---- API ----------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

let leaving = false;
let loggingOut = null;  // this page's POST /api/logout, once sent

// Leaves for /login, with next= this page so that signing in comes back
// here (not after signing out oneself). A logout request in flight is
// finished first: the server's close of the socket (1008) often comes
// before its answer, and leaving would abort the request in the browser.
export function goToLogin() {
  if (leaving)
    return;
  leaving = true;
  const here = location.pathname + location.search + location.hash;
  const url = loggingOut || here === '/' ? '/login'
    : '/login?next=' + encodeURIComponent(here);
  Promise.resolve(loggingOut).catch(() => {}).then(() => location.assign(url));
}

// fetch() for the JSON API. Throws ApiError (status 0 = network). A 401
// sends the browser to /login (unless redirect: false) and never settles.
export async function api(path, { method = 'GET', body, redirect = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD')
    headers['X-Requested-With'] = 'presenced';
  if (body !== undefined)
    headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'Cannot reach the server.');
  }
  let data = null;
  try {
    data = await r.json();
  } catch (e) { /* not JSON */ }
  if (r.ok)
    return data;
  if (r.status === 401 && redirect) {
    goToLogin();
    return new Promise(() => {});
  }
  const err = (data && data.error) || {};
  const retry = Number(r.headers.get('Retry-After'));
  throw new ApiError(r.status, err.code || 'http_' + r.status,
                     err.message || r.statusText || 'Request failed',
                     Number.isFinite(retry) && retry > 0 ? retry : null);
}

// ---- DOM ----------------------------------------------------------------

// h('a', {class: 'x', href: '/y', text: 'label'}, child, 'text', ...)
// Strings become text nodes; nothing is ever parsed as HTML.
export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false)
      continue;
    if (k === 'class')
      el.className = v;
    else if (k === 'text')
      el.textContent = v;
    else if (k === 'dataset')
      Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function')
      el.addEventListener(k.slice(2), v);
    else if (k === 'style')
      throw new Error('use el.style (CSSOM), not a style attribute');
    else
      el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid != null && kid !== false)
      el.append(kid);
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function userUrl(id) {
  return '/users/' + encodeURIComponent(id);
}

export function initials(name) {
  const words = String(name || '').trim().split(/\s+/).filter(Boolean);
  if (!words.length)
    return '?';
  const first = Array.from(words[0])[0] || '';
  const last = words.length > 1 ? Array.from(words[words.length - 1])[0] || '' : '';
  return (first + last).toUpperCase();
}

function hue(id) {
  let x = 0;
  for (const ch of String(id))
    x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return x % 360;
}

export function statusLabel(status) {
  return STATUS_LABELS[status] || STATUS_LABELS.OFFLINE;
}

// The .last-seen line. Only OFFLINE people show when they were last seen:
// someone AWAY or BUSY is connected right now. hidden: the person hides
// it (docs/protocol.md: "last_seen" null to everyone else), so only the
// status is shown and the line is empty.
export function lastSeenText(status, lastSeen, now = Date.now(), hidden = false) {
  if (status === 'ONLINE')
    return 'Online now';
  if (status === 'AWAY')
    return 'Away now';
  if (status === 'BUSY')
    return 'Busy now';
  if (lastSeen == null || lastSeen === '' || !Number.isFinite(Number(lastSeen)))
    return hidden ? '' : 'Never seen';
  const s = Math.max(0, Math.floor((now - Number(lastSeen)) / 1000));
  if (s < 60)
    return 'Last seen just now';
  const plural = (n, unit) => 'Last seen ' + n + ' ' + unit + (n === 1 ? '' : 's') + ' ago';
  const m = Math.floor(s / 60);
  if (m < 60)
    return plural(m, 'minute');
  const hrs = Math.floor(m / 60);
  if (hrs < 24)
    return plural(hrs, 'hour');
  const d = Math.floor(hrs / 24);
  if (d < 31)
    return plural(d, 'day');
  return 'Last seen on ' + new Date(Number(lastSeen)).toLocaleDateString(undefined,
    { year: 'numeric', month: 'short', day: 'numeric' });
}

// ---- times: "5:30 PM", "Dec 9, 5:30 PM", "4:12 PM local time" -------------

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dayTimeFmt = new Intl.DateTimeFormat(undefined,
  { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
const yearTimeFmt = new Intl.DateTimeFormat(undefined,
  { year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() &&
    a.getDate() === b.getDate();
}

// A moment in the viewer's zone: "at 5:30 PM" today, else "on Dec 9,
// 5:30 PM" (with the year when it is not this year's).
export function whenText(ms, now = Date.now()) {
  const d = new Date(Number(ms));
  const n = new Date(now);
  if (sameDay(d, n))
    return 'at ' + timeFmt.format(d);
  return 'on ' + (d.getFullYear() === n.getFullYear() ? dayTimeFmt : yearTimeFmt).format(d);
}

// "Clears at 5:30 PM" for a status message's expiry; '' for none.
export function clearsText(expires, now = Date.now()) {
  return expires == null || expires === '' || !Number.isFinite(Number(expires)) ? ''
    : 'Clears ' + whenText(expires, now);
}

// The hover text of the Do Not Disturb badge.
export function dndText(until, now = Date.now()) {
  return until == null || until === '' || !Number.isFinite(Number(until)) ? 'Do not disturb'
    : 'Do not disturb until ' + whenText(until, now).replace(/^at |^on /, '');
}

const zoneFmts = new Map();  // IANA zone -> formatter, null if unknown here

// "4:12 PM" in that zone, '' when the browser does not know it.
export function zoneTime(tz, now = Date.now()) {
  if (!tz)
    return '';
  let f = zoneFmts.get(tz);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', timeZone: tz });
    } catch (e) {
      f = null;  // RangeError: a zone this browser does not have
    }
    zoneFmts.set(tz, f);
  }
  return f ? f.format(new Date(now)) : '';
}

export function localTimeText(tz, now = Date.now()) {
  const t = zoneTime(tz, now);
  return t ? t + ' local time' : '';
}

// This browser's IANA zone, '' if it cannot tell.
export function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || '';
  } catch (e) {
    return '';
  }
}

export function byPresence(a, b) {
  return (STATUS_ORDER[a.status] ?? 9) - (STATUS_ORDER[b.status] ?? 9) ||
    String(a.name).localeCompare(String(b.name), undefined, { sensitivity: 'base' }) ||
    String(a.user).localeCompare(String(b.user));
}

// One collator for every comparison: localeCompare() with options builds
// a new one per call, which dominates sorting a large directory.
const collator = new Intl.Collator(undefined, { sensitivity: 'base' });
const exact = new Intl.Collator();

export function byName(a, b) {
  return collator.compare(String(a.name), String(b.name)) ||
    exact.compare(String(a.user), String(b.user));
}

// ---- members: what the page knows, kept current by presence events ------

const known = new Map();  // user id -> {user, name, status, last_seen, message, dnd, tz}

// docs/protocol.md: "message", "dnd" and "tz" are there only when set, and
// every member object carries the whole record, so an absent one is none.
function cleanMessage(x) {
  if (!x || typeof x !== 'object' || x.text == null || x.text === '')
    return null;
  const exp = x.expires == null ? NaN : Number(x.expires);
  return { text: String(x.text), emoji: x.emoji ? String(x.emoji) : null,
           expires: Number.isFinite(exp) ? exp : null };
}

function cleanDnd(x) {
  if (!x || typeof x !== 'object')
    return null;
  const until = x.until == null ? NaN : Number(x.until);
  return { until: Number.isFinite(until) ? until : null };
}

export function remember(m) {
  if (!m || m.user == null)
    return null;
  const id = String(m.user);
  const prev = known.get(id) || {};
  const lastSeen = m.last_seen !== undefined ? m.last_seen : (prev.last_seen ?? null);
  // A null last_seen is "never seen" or "hidden" (the person hides it).
  // It is hidden when the server says so, or when it was known before:
  // last_seen never goes back to null otherwise.
  const hidden = lastSeen == null &&
    (m.last_seen_hidden === true ||
     (m.last_seen_hidden !== false && (prev.last_seen != null || prev.last_seen_hidden === true)));
  const next = {
    user: id,
    name: m.name != null && m.name !== '' ? String(m.name) : (prev.name || id),
    status: STATUS_LABELS[m.status] ? m.status : (prev.status || 'OFFLINE'),
    last_seen: lastSeen,
    last_seen_hidden: hidden,
    message: cleanMessage(m.message),
    dnd: cleanDnd(m.dnd),
    tz: typeof m.tz === 'string' && m.tz !== '' ? m.tz : null,
  };
  known.set(id, next);
  return next;
}

// API answers are older than a live snapshot: use them only for members
// the snapshot has not told us about (yet).
let live = false;

export function rememberApi(m) {
  if (live && m && known.has(String(m.user)))
    return known.get(String(m.user));
  return remember(m);
}

export function knownMember(id) {
  return known.get(String(id));
}

export function knownMembers() {
  return [...known.values()];
}

// ---- persons (the DOM contract) ------------------------------------------

export function statusDot(status) {
  const dot = h('span', { class: 'status-dot' });
  paintDot(dot, STATUS_LABELS[status] ? status : 'OFFLINE');
  return dot;
}

export function avatar(m, size = 'md') {
  const a = h('span', { class: 'avatar avatar-' + size },
    h('span', { class: 'avatar-initials', 'aria-hidden': 'true', text: initials(m.name) }),
    statusDot(m.status));
  a.style.setProperty('--hue', String(hue(m.user)));  // CSSOM: allowed by the CSP
  return a;
}

// A person: [data-user-id][data-status] with .person-name, .status-dot,
// .status-text, a .dnd-badge and a .status-message (hidden while there is
// none), and (opts.lastSeen) .last-seen, (opts.localTime) .local-time.
// Hovering the person shows its local time (title), the message its
// expiry, the badge until when.
//   opts.tag       element (default "li")
//   opts.variant   "row" | "chip" | "card" | "profile"
//   opts.link      name links to the profile (default true)
//   opts.size      avatar size "sm" | "md" | "lg" | "xl"
//   opts.localTime show "4:12 PM local time" as text too
export function person(member, opts = {}) {
  const m = rememberApi(member) || member;
  const { tag = 'li', variant = 'row', link = true, lastSeen = false, size = 'md', localTime = false } = opts;
  const nameEl = link
    ? h('a', { class: 'person-name', href: userUrl(m.user), text: m.name })
    : h('span', { class: 'person-name', text: m.name });
  const badge = h('span', { class: 'dnd-badge', role: 'img', hidden: true },
    h('span', { class: 'dnd-moon', 'aria-hidden': 'true' }),
    // A profile has room for the words (the label says them anyway).
    variant === 'profile' ? h('span', { class: 'dnd-text', 'aria-hidden': 'true' }) : null);
  const msg = h('span', { class: 'status-message', hidden: true },
    h('span', { class: 'status-emoji', 'aria-hidden': 'true' }),
    h('span', { class: 'status-message-text' }),
    // A profile says when it clears in words too, not only on hover.
    variant === 'profile' ? h('span', { class: 'status-message-when' }) : null);
  const meta = h('span', { class: 'person-meta' },
    h('span', { class: 'status-text', text: statusLabel(m.status) }));
  if (lastSeen)
    meta.append(h('span', { class: 'last-seen' }));
  if (localTime)
    meta.append(h('span', { class: 'local-time', hidden: true }));
  const el = h(tag, { class: 'person person-' + variant },
    avatar(m, size),
    h('span', { class: 'person-body' },
      h('span', { class: 'person-title' }, nameEl, badge), msg, meta));
  el.dataset.userId = m.user;
  el.dataset.status = m.status;
  paintExtras(el, m);
  return el;
}

// Writes what a member says about itself (message, DND, zone, last seen)
// into one of its elements; the times are kept in data-* attributes so
// that the shared timer can redraw them without the member.
function paintExtras(el, m, now = Date.now()) {
  const d = el.dataset;
  d.lastSeen = m.last_seen == null ? '' : String(m.last_seen);
  d.lastSeenHidden = m.last_seen_hidden ? '1' : '';
  d.tz = m.tz || '';
  const msg = m.message;
  d.messageExpires = msg && msg.expires != null ? String(msg.expires) : '';
  d.dndUntil = m.dnd && m.dnd.until != null ? String(m.dnd.until) : '';
  d.dnd = m.dnd ? '1' : '';
  for (const b of el.querySelectorAll('.dnd-badge'))
    b.hidden = !m.dnd;
  for (const box of el.querySelectorAll('.status-message')) {
    box.hidden = !msg;
    const emoji = box.querySelector('.status-emoji');
    const text = box.querySelector('.status-message-text');
    const e = msg && msg.emoji ? msg.emoji : '';
    const t = msg ? msg.text : '';
    if (emoji.textContent !== e)
      emoji.textContent = e;
    emoji.hidden = !e;
    if (text.textContent !== t)
      text.textContent = t;
  }
  renderTimes(el, now);
}

// The parts of a person that depend on the clock: last seen, the local
// time, when the message clears and when DND ends ("at 5:30 PM" becomes
// "on Dec 9, 5:30 PM" past midnight).
export function renderTimes(el, now = Date.now()) {
  const d = el.dataset;
  renderLastSeen(el, now);
  const local = localTimeText(d.tz, now);
  if (el.title !== local)
    el.title = local;
  for (const lt of el.querySelectorAll('.local-time')) {
    lt.textContent = local;
    lt.hidden = !local;
  }
  const clears = clearsText(d.messageExpires, now);
  for (const box of el.querySelectorAll('.status-message')) {
    if (box.title !== clears)
      box.title = clears;
    for (const w of box.querySelectorAll('.status-message-when')) {
      w.textContent = clears;
      w.hidden = !clears;
    }
  }
  if (d.dnd) {
    const text = dndText(d.dndUntil, now);
    for (const b of el.querySelectorAll('.dnd-badge')) {
      b.title = text;
      b.setAttribute('aria-label', text);
      for (const t of b.querySelectorAll('.dnd-text'))
        t.textContent = text;
    }
  }
}

export function renderLastSeen(el, now = Date.now()) {
  for (const ls of el.querySelectorAll('.last-seen')) {
    const t = lastSeenText(el.dataset.status, el.dataset.lastSeen, now, el.dataset.lastSeenHidden === '1');
    if (ls.textContent !== t)
      ls.textContent = t;
    ls.hidden = t === '';
  }
}

export function personsOf(userId) {
  return document.querySelectorAll('[data-user-id="' + CSS.escape(String(userId)) + '"]');
}

// Brings every rendering of this member up to date (els: its elements,
// when the caller found them already).
export function refreshPerson(member, els) {
  const m = remember(member);
  if (!m)
    return;
  if (els) {
    for (const el of els)
      paintPerson(el, m.status);
  } else {
    updateUserStatus(m.user, m.status);
    els = personsOf(m.user);
  }
  const now = Date.now();
  for (const el of els) {
    for (const n of el.querySelectorAll('.person-name'))
      if (n.textContent !== m.name)
        n.textContent = m.name;
    for (const n of el.querySelectorAll('.avatar-initials'))
      n.textContent = initials(m.name);
    paintExtras(el, m, now);
  }
}

// The same for many members (a snapshot), walking the page once.
export function refreshPeople(members) {
  const byId = personElements();
  for (const m of members)
    refreshPerson(m, byId.get(String(m.user)) || []);
}

// Every person's clock-dependent text (the shared timer does this every
// CLOCK_MS; a page may call it after an event too).
export function refreshAllLastSeen() {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-user-id]'))
    renderTimes(el, now);
}

// One timer for every page (startPage starts it): "last seen 5 minutes
// ago" and "4:12 PM local time" move on without a reload. Functions
// registered with onClock() run on the same tick (the dashboard's own
// times).
const CLOCK_MS = 30000;
const clockFns = new Set();
let clockTimer = 0;

export function onClock(fn) {
  clockFns.add(fn);
  return () => clockFns.delete(fn);
}

function startClock() {
  if (clockTimer)
    return;
  const tick = () => {
    refreshAllLastSeen();
    for (const fn of [...clockFns]) {
      try {
        fn(Date.now());
      } catch (e) {
        reportError(e);
      }
    }
  };
  // Ticks on the half minutes, so that the local times turn with the
  // minute.
  const toMinute = 60000 - (Date.now() % 60000);
  clockTimer = setTimeout(() => {
    tick();
    clockTimer = setInterval(tick, CLOCK_MS);
  }, toMinute % CLOCK_MS || CLOCK_MS);
}

// Re-orders the persons in list (same elements) by presence; only touches
// the DOM when the order changed.
export function sortList(list, cmp = byPresence) {
  const els = [...list.querySelectorAll(':scope > [data-user-id]')];
  const sorted = els
    .map((el) => ({ el, m: known.get(el.dataset.userId) || { user: el.dataset.userId, name: '', status: el.dataset.status } }))
    .sort((a, b) => cmp(a.m, b.m))
    .map((x) => x.el);
  if (sorted.some((el, i) => el !== els[i]))
    list.append(...sorted);
}

// ---- header --------------------------------------------------------------

const NAV = [
  ['dashboard', '/', 'Dashboard'],
  ['channels', '/channels', 'Channels'],
  ['projects', '/projects', 'Projects'],
  ['members', '/members', 'Members'],
];

// The section a path belongs to: a channel is under Channels, a project
// under Projects, a person's page under Members.
function navSection(path) {
  if (path === '/')
    return 'dashboard';
  const top = path.split('/')[1];
  if (top === 'channels' || top === 'projects' || top === 'members')
    return top;
  return top === 'users' ? 'members' : null;
}

const CONN_LABELS = { connecting: 'Connecting…', connected: 'Live', offline: 'Offline' };

// active: the NAV key of the current section; null or undefined: the
// one the path is in (navSection()); false: none (the 404 page).
function renderHeader(active, presence) {
  if (active == null)
    active = navSection(location.pathname);
  const nameEl = h('span', { class: 'me-name' });
  const conn = h('span', { id: 'conn-state', class: 'conn-state', role: 'status', 'aria-live': 'polite' },
    h('span', { class: 'conn-dot', 'aria-hidden': 'true' }),
    h('span', { class: 'conn-label' }));
  const setConn = (state) => {
    conn.dataset.state = state;
    conn.querySelector('.conn-label').textContent = CONN_LABELS[state] || state;
    conn.title = state === 'connected' ? 'Live updates connected'
      : state === 'offline' ? 'Live updates disconnected; reconnecting' : 'Connecting to live updates';
  };
  setConn(presence.state);
  presence.on('state', setConn);

  const logoutBtn = h('button', { id: 'logout', type: 'button', class: 'btn btn-ghost', text: 'Log out' });
  const logoutMsg = h('span', { class: 'logout-error', role: 'alert' });
  logoutBtn.addEventListener('click', async () => {
    logoutBtn.disabled = true;
    logoutMsg.textContent = '';
    // Not redirect: a 401 here means the session is over anyway, and
    // goToLogin() waits for this very request.
    loggingOut = api('/api/logout', { method: 'POST', redirect: false });
    try {
      await loggingOut;
    } catch (e) {
      if (e.status !== 401) {
        loggingOut = null;
        logoutBtn.disabled = false;
        logoutBtn.textContent = 'Retry log out';
        logoutMsg.textContent = 'Log out failed: ' + e.message;
        return;
      }
    }
    presence.close();
    goToLogin();
  });

  const nav = h('nav', { class: 'main-nav', 'aria-label': 'Main' },
    NAV.map(([key, href, label]) =>
      h('a', { href, 'aria-current': key === active ? 'page' : null, text: label })));
  const header = h('header', { class: 'app-header' },
    h('a', { class: 'skip-link', href: '#main', text: 'Skip to content' }),
    h('div', { class: 'header-inner' },
      h('a', { class: 'brand', href: '/' },
        h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'presenced'),
      nav,
      h('div', { class: 'header-right' }, conn, nameEl, logoutBtn, logoutMsg)));
  const slot = document.getElementById('app-header');
  if (slot)
    slot.replaceWith(header);
  else
    document.body.prepend(header);
  return { setName: (n) => { nameEl.textContent = n; } };
}

// ---- page start-up ---------------------------------------------------------

export function mainEl() {
  return document.getElementById('main');
}

export function showError(title, detail) {
  const main = mainEl();
  clear(main).append(h('section', { class: 'card empty-state', role: 'alert' },
    h('h1', { text: title }), detail ? h('p', { class: 'muted', text: detail }) : null,
    h('p', {}, h('a', { href: '/', text: 'Back to the dashboard' }))));
}

// docs/protocol.md "tz": a person without a zone gets this browser's, once
// per page load (and not again in this tab after the server refused it).
// Updates me (the /api/me answer) in place.
async function ensureZone(me) {
  const settings = me && me.settings;
  if (!settings || settings.tz != null)
    return;
  const tz = browserZone();
  let tried = null;
  try {
    tried = sessionStorage.getItem('presenced-tz-refused');
  } catch (e) { /* storage off */ }
  if (!tz || tried === tz)
    return;
  try {
    const next = await api('/api/profile', { method: 'PUT', body: { tz } });
    if (next && typeof next === 'object')
      Object.assign(me, next);
  } catch (e) {
    if (e instanceof ApiError && e.status === 400) {
      try {
        sessionStorage.setItem('presenced-tz-refused', tz);
      } catch (x) { /* storage off */ }
    }
  }
}

// Runs a page:
//   active   nav key
//   load({me, presence})   -> data (API calls)
//   render(data, ctx)      builds the page
//   onPresence(member, ctx), onSnapshot(ctx)   live updates after render
// ctx: {presence, me (the caller as a member), account (the /api/me
// answer, with "manual" and "settings")}.
// Sets document.body.dataset.ready = "1" once rendered with API data and
// a snapshot applied.
export async function startPage({ active, load, render, onPresence, onSnapshot, notFound }) {
  const presence = connect();
  const header = renderHeader(active, presence);
  const ctx = { presence, me: null, rendered: false };

  presence.on('error', (e) => {
    if (e.code === 'logged_out')
      goToLogin();
  });
  // Still not connected a while after a drop: if the session is gone (it
  // expired, or it ended elsewhere), api() sends us to /login.
  let lastCheck = 0;
  let checkTimer = 0;
  presence.on('state', (s) => {
    clearTimeout(checkTimer);
    if (s !== 'offline' || leaving)
      return;
    checkTimer = setTimeout(() => {
      if (presence.state === 'connected' || leaving || Date.now() - lastCheck < 15000)
        return;
      lastCheck = Date.now();
      api('/api/me').catch(() => {});
    }, 3000);
  });
  presence.on('snapshot', (snap) => {
    live = true;
    refreshPeople(snap.members);
    if (ctx.rendered && onSnapshot)
      onSnapshot(ctx);
  });
  presence.on('presence', (m) => {
    refreshPerson(m);
    if (ctx.rendered && onPresence)
      onPresence(knownMember(m.user), ctx);
  });

  let me;
  try {
    me = await api('/api/me');
  } catch (e) {
    showError('Could not load your account', e.message);
    return ctx;
  }
  await ensureZone(me);
  ctx.account = me;  // /api/me as it came: "manual" and "settings" too
  ctx.me = rememberApi(me);
  header.setName(me.name);
  startClock();
  // The shared socket may still belong to someone who logged out here.
  const checkHello = (hello) => {
    if (hello && String(hello.user) !== String(me.user))
      presence.reconnect();
  };
  presence.on('hello', checkHello);
  checkHello(presence.hello);

  let data;
  try {
    data = await load(ctx);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      document.title = 'Not found · presenced';
      showError(notFound || 'Not found', 'It does not exist, or it is not in your organization.');
      await presence.ready;
      document.body.dataset.ready = '1';
    } else {
      showError('Could not load this page', e.message + ' Reload to try again.');
    }
    return ctx;
  }
  render(data, ctx);
  ctx.rendered = true;
  await presence.ready;
  // What the page knows (the snapshot and every event since) is on the
  // page already; this redraws it once more for the renders that came
  // from API answers before the snapshot.
  refreshPeople(knownMembers());
  if (onSnapshot)
    onSnapshot(ctx);
  document.body.dataset.ready = '1';
  return ctx;
}

// ---- helpers for the directory ----------------------------------------------

// A name or a search folded for matching: each code point to its simple
// lowercase, where toLowerCase() gives one code point (so "İ" stays).
// The server's GET /api/members?q= folds with the same table
// (src/api/directory.c); a name matches when its fold contains the
// query's.
export function fold(s) {
  let out = '';
  for (const ch of String(s)) {
    const low = ch.toLowerCase();
    const one = low.length === 1 || (low.length === 2 && low.codePointAt(0) > 0xffff);
    out += one ? low : ch;
  }
  return out;
}

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

export function lastSeenText(status, lastSeen, now = Date.now()) {
  if (status === 'ONLINE')
    return 'Online now';
  if (lastSeen == null || lastSeen === '' || !Number.isFinite(Number(lastSeen)))
    return 'Never seen';
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

const known = new Map();  // user id -> {user, name, status, last_seen}

export function remember(m) {
  if (!m || m.user == null)
    return null;
  const id = String(m.user);
  const prev = known.get(id) || {};
  const next = {
    user: id,
    name: m.name != null && m.name !== '' ? String(m.name) : (prev.name || id),
    status: STATUS_LABELS[m.status] ? m.status : (prev.status || 'OFFLINE'),
    last_seen: m.last_seen !== undefined ? m.last_seen : (prev.last_seen ?? null),
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
// .status-text and (opts.lastSeen) .last-seen.
//   opts.tag     element (default "li")
//   opts.variant "row" | "chip" | "card" | "profile"
//   opts.link    name links to the profile (default true)
//   opts.size    avatar size "sm" | "md" | "lg" | "xl"
export function person(member, opts = {}) {
  const m = rememberApi(member) || member;
  const { tag = 'li', variant = 'row', link = true, lastSeen = false, size = 'md' } = opts;
  const nameEl = link
    ? h('a', { class: 'person-name', href: userUrl(m.user), text: m.name })
    : h('span', { class: 'person-name', text: m.name });
  const meta = h('span', { class: 'person-meta' },
    h('span', { class: 'status-text', text: statusLabel(m.status) }));
  if (lastSeen)
    meta.append(h('span', { class: 'last-seen' }));
  const el = h(tag, { class: 'person person-' + variant },
    avatar(m, size),
    h('span', { class: 'person-body' }, nameEl, meta));
  el.dataset.userId = m.user;
  el.dataset.status = m.status;
  el.dataset.lastSeen = m.last_seen == null ? '' : String(m.last_seen);
  renderLastSeen(el);
  return el;
}

export function renderLastSeen(el, now = Date.now()) {
  for (const ls of el.querySelectorAll('.last-seen'))
    ls.textContent = lastSeenText(el.dataset.status, el.dataset.lastSeen, now);
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
  for (const el of els) {
    el.dataset.lastSeen = m.last_seen == null ? '' : String(m.last_seen);
    for (const n of el.querySelectorAll('.person-name'))
      if (n.textContent !== m.name)
        n.textContent = m.name;
    for (const n of el.querySelectorAll('.avatar-initials'))
      n.textContent = initials(m.name);
    renderLastSeen(el);
  }
}

// The same for many members (a snapshot), walking the page once.
export function refreshPeople(members) {
  const byId = personElements();
  for (const m of members)
    refreshPerson(m, byId.get(String(m.user)) || []);
}

export function refreshAllLastSeen() {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-user-id]'))
    renderLastSeen(el, now);
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
  ['members', '/members', 'Members'],
];

const CONN_LABELS = { connecting: 'Connecting…', connected: 'Live', offline: 'Offline' };

function renderHeader(active, presence) {
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

// Runs a page:
//   active   nav key
//   load({me, presence})   -> data (API calls)
//   render(data, ctx)      builds the page
//   onPresence(member, ctx), onSnapshot(ctx)   live updates after render
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
  ctx.me = rememberApi(me);
  header.setName(me.name);
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
  refreshPeople(presence.members().values());
  if (onSnapshot)
    onSnapshot(ctx);
  document.body.dataset.ready = '1';
  return ctx;
}

// presence.js - browser client for presenced. Dependency-free ES module.
//
//   import { connect } from '/static/presence.js';
//   const presence = connect();            // also sets window.presence
//   presence.on('presence', (m) => ...);   // {user, name, status, last_seen, seq, reason}
//   presence.setStatus('BUSY');
//
// One WebSocket per browser: with SharedWorker, every tab of the origin
// shares the connection of presence-worker.js. Without it (or with
// {shared:false}) the page connects itself and tabs share user activity
// over BroadcastChannel("presenced-activity").
//
// A page that shows only some people of a large organization connects
// with {subscribe: true} (before anything else calls connect()) and says
// whom it shows:
//   const presence = connect({ subscribe: true });
//   presence.subscribe(['u1', 'u2']);      // a 'snapshot' {partial: true}
//   presence.unsubscribe(['u2']);          //   of those users follows
//   presence.on('online', ({ online }) => ...);  // the organization's count
// The shared socket then follows the union of what the tabs follow, and
// takes no snapshot of the whole organization unless a tab that did not
// ask for subscriptions is open too (docs/protocol.md "Subscriptions").
import { Engine, STATUSES } from './presence-engine.js';

export { STATUSES };
export const STATUS_LABELS = Object.freeze({
  ONLINE: 'Online', AWAY: 'Away', BUSY: 'Busy', OFFLINE: 'Offline',
});

// The idle detector's inputs ("input"/"change": a form control changed, as
// a picker does without any mouse or key event under assistive tech).
const ACTIVITY_EVENTS = ['mousemove', 'mousedown', 'keydown', 'scroll', 'touchstart', 'click', 'input', 'change'];
const ACTIVITY_THROTTLE_MS = 1000;
const PING_MS = 5000;              // tab -> worker ping
const WORKER_SILENCE_MS = 3 * PING_MS;
const CHANNEL = 'presenced-activity';

let tabSeq = 0;
const tabId = Math.random().toString(36).slice(2) + Date.now().toString(36);

// ---- DOM helpers (also the window.updateUserStatus global) --------------

const DOT_CLASSES = ['status-online', 'status-away', 'status-busy', 'status-offline'];

function cssEscape(s) {
  return globalThis.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, '\\$&');
}

// Paints one .status-dot: colour class, and its text equivalent.
export function paintDot(dot, status) {
  const label = STATUS_LABELS[status];
  if (!label)
    return;
  dot.classList.remove(...DOT_CLASSES);
  dot.classList.add('status-' + status.toLowerCase());
  dot.setAttribute('role', 'img');
  dot.setAttribute('aria-label', label);
  dot.title = label;
}

// Recolours every [data-user-id] element of this user on the page: its
// data-status, the .status-dot inside (class + aria-label) and .status-text.
export function updateUserStatus(userId, status) {
  if (userId == null || !STATUS_LABELS[status] || typeof document === 'undefined')
    return;
  const sel = '[data-user-id="' + cssEscape(String(userId)) + '"]';
  for (const el of document.querySelectorAll(sel))
    paintPerson(el, status);
}

// One [data-user-id] element: data-status, its dots and its status text.
export function paintPerson(el, status) {
  if (!STATUS_LABELS[status])
    return;
  el.dataset.status = status;
  if (el.matches('.status-dot'))
    paintDot(el, status);
  for (const dot of el.querySelectorAll('.status-dot'))
    paintDot(dot, status);
  for (const t of el.querySelectorAll('.status-text'))
    t.textContent = STATUS_LABELS[status];
}

// Every [data-user-id] element on the page, by user id: one walk of the
// document for a whole snapshot, where a query per member would cost
// members x elements (minutes in an organization of 10,000).
export function personElements() {
  const byId = new Map();
  if (typeof document === 'undefined')
    return byId;
  for (const el of document.querySelectorAll('[data-user-id]')) {
    const id = el.dataset.userId;
    const list = byId.get(id);
    if (list)
      list.push(el);
    else
      byId.set(id, [el]);
  }
  return byId;
}

// Recolours many members at once (a snapshot). A page that installed its
// own window.updateUserStatus gets one call per member, as always.
function updateAll(members) {
  const own = typeof window !== 'undefined' && typeof window.updateUserStatus === 'function' &&
    window.updateUserStatus !== updateUserStatus;
  if (own) {
    for (const m of members)
      callUpdateUserStatus(m.user, m.status);
    return;
  }
  const byId = personElements();
  for (const m of members)
    for (const el of byId.get(String(m.user)) || [])
      paintPerson(el, m.status);
}

function callUpdateUserStatus(user, status) {
  const fn = typeof window !== 'undefined' && typeof window.updateUserStatus === 'function'
    ? window.updateUserStatus : updateUserStatus;
  try {
    fn(user, status);
  } catch (e) {
    report(e);
  }
}

function report(e) {
  if (typeof reportError === 'function')
    reportError(e);
  else
    setTimeout(() => { throw e; });
}

export function defaultUrl(base = location.href) {
  const u = new URL('/ws/presence/', base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

function wsUrl(url) {
  if (!url)
    return defaultUrl();
  const u = new URL(url, location.href);
  if (u.protocol === 'http:')
    u.protocol = 'ws:';
  else if (u.protocol === 'https:')
    u.protocol = 'wss:';
  return u.href;
}

// Module SharedWorkers are not everywhere. Reading `type` from the options
// tells whether the constructor knows it; the bad URL then makes it throw
// before any worker (or request) is made.
function moduleWorkersSupported() {
  let ok = false;
  try {
    const opts = { get type() { ok = true; return 'module'; } };
    new SharedWorker('http://[', opts);
  } catch (e) { /* expected */ }
  return ok;
}

// ---- the client -------------------------------------------------------

export class PresenceClient {
  constructor(options = {}) {
    this.url = wsUrl(options.url);
    this.token = options.token || null;
    this.shared = options.shared !== false;
    this.subscribing = options.subscribe === true;
    this.workerUrl = options.workerUrl || new URL('./presence-worker.js', import.meta.url).href;

    this.state = 'connecting';
    this.mode = null;          // "shared" or "direct" once started
    this.hello = null;
    this.me = null;            // the caller's user id (from hello)
    this.manual = null;        // the caller's manual status, null if none
    this.seq = 0;
    this.synced = false;
    this.online = null;        // the organization's online count, when told
    this._subs = new Set();    // the users this page follows
    this._members = new Map();
    this._handlers = new Map();
    this._closed = false;
    this._lastActivity = 0;
    this._port = null;
    this._engine = null;
    this._bc = null;
    this._pingTimer = 0;
    this._lastWorkerMsg = 0;
    this._releaseLock = null;
    this.ready = new Promise((resolve) => { this._resolveReady = resolve; });

    this._listen();
    this._start();
  }

  // ---- public API ----

  on(event, fn) {
    if (!this._handlers.has(event))
      this._handlers.set(event, new Set());
    this._handlers.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    const set = this._handlers.get(event);
    if (set)
      set.delete(fn);
  }

  // A copy of the organization's members: Map user id -> member.
  members() {
    const out = new Map();
    for (const [id, m] of this._members)
      out.set(id, { ...m });
    return out;
  }

  member(userId) {
    const m = this._members.get(String(userId));
    return m ? { ...m } : undefined;
  }

  // Effective status of a member, undefined if unknown.
  status(userId) {
    const m = this._members.get(String(userId));
    return m ? m.status : undefined;
  }

  // Manual status: "BUSY", "AWAY", "OFFLINE" (appear offline), "ONLINE"
  // (clears it). Goes over the WebSocket; while it is not connected, it
  // is also PUT over HTTP (and re-sent on the next connection).
  setStatus(status) {
    status = String(status || '').toUpperCase();
    if (!STATUSES.includes(status))
      return Promise.reject(new TypeError('status must be one of ' + STATUSES.join(', ')));
    if (this._port)
      this._post({ t: 'status', status });
    else if (this._engine)
      this._engine.setStatus(status);
    if (this.state === 'connected')
      return Promise.resolve(status);
    return this._putStatus(status).then(() => status);
  }

  // Follow these users (ids): their truth comes as a partial 'snapshot',
  // their changes as 'presence' events. Only with {subscribe: true}; a
  // socket taking the whole organization has them anyway.
  subscribe(users) {
    const fresh = [...users].map(String).filter((id) => !this._subs.has(id));
    if (!fresh.length)
      return;
    for (const id of fresh)
      this._subs.add(id);
    if (this._port)
      this._post({ t: 'subscribe', users: fresh });
    else if (this._engine)
      this._engine.subscribe(fresh);
  }

  unsubscribe(users) {
    const gone = [...users].map(String).filter((id) => this._subs.has(id));
    if (!gone.length)
      return;
    for (const id of gone)
      this._subs.delete(id);
    if (this._port)
      this._post({ t: 'unsubscribe', users: gone });
    else if (this._engine)
      this._engine.unsubscribe(gone);
  }

  subscriptions() {
    return [...this._subs];
  }

  reconnect() {
    if (this._port)
      this._post({ t: 'reconnect' });
    else if (this._engine)
      this._engine.reconnect();
  }

  close() {
    if (this._closed)
      return;
    this._closed = true;
    this._unlisten();
    this._detachWorker();
    if (this._engine)
      this._engine.stop();
    if (this._bc)
      this._bc.close();
    this._setState('offline');
  }

  // ---- plumbing ----

  _emit(event, arg) {
    const set = this._handlers.get(event);
    if (!set)
      return;
    for (const fn of [...set]) {
      try {
        fn(arg);
      } catch (e) {
        report(e);
      }
    }
  }

  _start() {
    const canShare = this.shared && typeof SharedWorker === 'function' &&
      new URL(this.workerUrl).origin === location.origin && moduleWorkersSupported();
    if (canShare) {
      try {
        this._attachWorker();
        return;
      } catch (e) { /* fall back to a direct connection */ }
    }
    this._startDirect();
  }

  _startDirect() {
    this.mode = 'direct';
    if (!this._engine) {
      this._engine = new Engine({ url: this.url, token: this.token, emit: (m) => this._onMsg(m),
                                  subscribe: this.subscribing });
      this._engine.subscribe([...this._subs]);
    }
    if (!this._bc && typeof BroadcastChannel === 'function') {
      this._bc = new BroadcastChannel(CHANNEL);
      this._bc.onmessage = () => {
        if (this._engine)
          this._engine.activity();
      };
    }
    this._engine.start();
  }

  _attachWorker() {
    this.mode = 'shared';
    // extendedLifetime (where known) lets the worker, and so the socket,
    // outlive the page for a moment: the next page of this tab reuses it.
    const worker = new SharedWorker(this.workerUrl,
      { type: 'module', name: 'presenced ' + this.url, extendedLifetime: true });
    const port = worker.port;
    const attachId = ++tabSeq;
    let heard = false;
    this._port = port;
    this._lastWorkerMsg = Date.now();
    port.onmessage = (ev) => {
      if (this._port !== port)
        return;
      heard = true;
      this._lastWorkerMsg = Date.now();
      this._onMsg(ev.data);
    };
    worker.onerror = () => {
      // The worker script failed to load or run: connect from the page.
      if (this._port === port && !heard) {
        this._detachWorker();
        this._startDirect();
      }
    };
    this._post(this._hello(tabId + '-' + attachId));
    if (navigator.locks && navigator.locks.request) {
      const name = 'presenced-tab-' + tabId + '-' + attachId;
      navigator.locks.request(name, () => new Promise((release) => {
        if (this._port !== port) {
          release();
          return;
        }
        this._releaseLock = release;
        this._post({ t: 'lock', name });
      })).catch(() => {});
    }
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => this._tick(), PING_MS);
  }

  _detachWorker() {
    clearInterval(this._pingTimer);
    this._pingTimer = 0;
    if (this._port) {
      this._post({ t: 'bye' });
      try {
        this._port.close();
      } catch (e) { /* gone */ }
      this._port = null;
    }
    if (this._releaseLock) {
      this._releaseLock();
      this._releaseLock = null;
    }
  }

  // Attaching to the worker: who, and what this page follows.
  _hello(id) {
    return { t: 'hello', id, url: this.url, token: this.token,
             mode: this.subscribing ? 'subscribe' : 'all', subs: [...this._subs] };
  }

  _post(msg) {
    if (!this._port)
      return;
    try {
      this._port.postMessage(msg);
    } catch (e) { /* port closed */ }
  }

  _tick() {
    if (!this._port)
      return;
    const silent = Date.now() - this._lastWorkerMsg;
    if (silent > 2 * WORKER_SILENCE_MS) {
      // The worker is gone (it crashed, or was dropped): start a new one.
      this._detachWorker();
      this._attachWorker();
    } else if (silent > WORKER_SILENCE_MS) {
      this._post(this._hello(tabId + '-' + tabSeq));
    } else {
      this._post({ t: 'ping' });
    }
  }

  _onMsg(m) {
    if (!m || typeof m !== 'object')
      return;
    switch (m.t) {
    case 'ping':
      this._post({ t: 'pong' });
      break;
    case 'rehello':
      this._post(this._hello(tabId + '-' + tabSeq));
      break;
    case 'state':
      this._setState(m.state, m.retryIn);
      break;
    case 'manual':
      if (m.manual !== this.manual) {
        this.manual = m.manual;
        if (this.hello)
          this.hello.manual = m.manual;
        this._emit('manual', m.manual);
      }
      break;
    case 'frame':
      this._frame(m.frame);
      break;
    default:
      break;
    }
  }

  _setState(state, retryIn) {
    if (!state)
      return;
    const changed = state !== this.state;
    this.state = state;
    this.retryIn = retryIn;  // ms until the next attempt, when offline
    if (changed || retryIn !== undefined)
      this._emit('state', state);
  }

  _frame(f) {
    if (!f || typeof f !== 'object')
      return;
    switch (f.type) {
    case 'hello':
      this.hello = { ...f };
      this.me = f.user != null ? String(f.user) : null;
      this.manual = f.manual === undefined ? null : f.manual;
      this._emit('hello', { ...f });
      break;
    case 'snapshot': {
      // A partial one (subscriptions) is the truth of the users it names
      // only: merged into what the page holds.
      const partial = f.partial === true;
      const got = (f.members || []).map((m) => ({ ...m, user: String(m.user) }));
      if (!partial)
        this._members = new Map();
      for (const m of got)
        this._members.set(m.user, m);
      this.seq = f.seq || 0;
      this.synced = true;
      updateAll(partial ? got : this._members.values());
      const snap = { seq: this.seq, members: (partial ? got : [...this._members.values()]).map((m) => ({ ...m })) };
      if (partial) {
        snap.partial = true;
        this._online(f.online, f.seq);
      }
      this._emit('snapshot', snap);
      this._resolveReady(this);
      break;
    }
    case 'online':
      this._online(f.online, f.seq);
      break;
    case 'presence': {
      if (typeof f.seq === 'number') {
        if (this.synced && f.seq <= this.seq)
          return;
        this.seq = f.seq;
      }
      const user = String(f.user);
      const prev = this._members.get(user);
      const m = { user, name: f.name != null ? f.name : (prev ? prev.name : user),
                  status: f.status, last_seen: f.last_seen === undefined ? null : f.last_seen };
      for (const k of ['message', 'dnd', 'tz'])
        if (f[k] != null)
          m[k] = f[k];
      this._members.set(user, m);
      if (this.hello && user === this.me)
        this.hello.status = f.status;
      callUpdateUserStatus(user, f.status);
      this._emit('presence', { ...f, user, previous: prev ? prev.status : undefined });
      break;
    }
    case 'error':
      this._emit('error', { ...f });
      break;
    default:
      break;
    }
  }

  _online(online, seq) {
    if (typeof online !== 'number' || online === this.online)
      return;
    this.online = online;
    this._emit('online', { online, seq });
  }

  _putStatus(status) {
    const http = new URL('/api/status', this.url.replace(/^ws/, 'http'));
    const headers = { 'Content-Type': 'application/json', 'X-Requested-With': 'presenced' };
    if (this.token)
      headers.Authorization = 'Bearer ' + this.token;
    return fetch(http.href, {
      method: 'PUT', headers, body: JSON.stringify({ status }),
      credentials: http.origin === location.origin ? 'same-origin' : 'include',
    }).then((r) => {
      if (!r.ok)
        throw new Error('status not saved (HTTP ' + r.status + ')');
      return r.json();
    });
  }

  // ---- page events: activity, visibility, network, lifecycle ----

  _listen() {
    const opts = { passive: true, capture: true };
    this._onActivity = () => {
      const now = Date.now();
      if (now - this._lastActivity < ACTIVITY_THROTTLE_MS)
        return;
      this._lastActivity = now;
      this._activity();
    };
    this._onVisibility = () => {
      if (document.visibilityState === 'visible') {
        this._lastActivity = Date.now();
        this._activity();
        this._wake();
      }
    };
    this._onOnline = () => this._wake();
    this._onPageHide = () => this._sleep();
    this._onFreeze = () => this._sleep();
    this._onPageShow = (e) => {
      if (e.persisted)
        this._resume();
    };
    this._onResume = () => this._resume();
    for (const ev of ACTIVITY_EVENTS)
      window.addEventListener(ev, this._onActivity, opts);
    document.addEventListener('visibilitychange', this._onVisibility);
    window.addEventListener('online', this._onOnline);
    window.addEventListener('pagehide', this._onPageHide);
    window.addEventListener('pageshow', this._onPageShow);
    document.addEventListener('freeze', this._onFreeze);
    document.addEventListener('resume', this._onResume);
  }

  _unlisten() {
    const opts = { passive: true, capture: true };
    for (const ev of ACTIVITY_EVENTS)
      window.removeEventListener(ev, this._onActivity, opts);
    document.removeEventListener('visibilitychange', this._onVisibility);
    window.removeEventListener('online', this._onOnline);
    window.removeEventListener('pagehide', this._onPageHide);
    window.removeEventListener('pageshow', this._onPageShow);
    document.removeEventListener('freeze', this._onFreeze);
    document.removeEventListener('resume', this._onResume);
  }

  _activity() {
    if (this._port) {
      this._post({ t: 'activity' });
    } else if (this._engine) {
      this._engine.activity();
      if (this._bc)
        this._bc.postMessage('activity');
    }
  }

  _wake() {
    if (this._port)
      this._post({ t: 'wake' });
    else if (this._engine)
      this._engine.wake();
  }

  // The page goes away (or into the back/forward cache, or is frozen).
  _sleep() {
    if (this._closed)
      return;
    if (this.mode === 'shared')
      this._detachWorker();
    else if (this._engine)
      this._engine.stop();
  }

  _resume() {
    if (this._closed)
      return;
    if (this.mode === 'shared') {
      if (!this._port)
        this._attachWorker();
    } else if (this._engine) {
      this._engine.start();
    }
  }
}

// ---- entry points and compatibility globals ---------------------------

const clients = new Map();

// Returns the page's client for this URL (one per page), creating it: the
// options of the call that creates it decide ({subscribe: true} included),
// later calls get the same client.
export function connect(options = {}) {
  const key = wsUrl(options.url) + '|' + (options.shared === false ? 'direct' : 'shared');
  let c = clients.get(key);
  if (!c || c._closed) {
    c = new PresenceClient(options);
    clients.set(key, c);
  }
  if (typeof window !== 'undefined')
    window.presence = c;
  return c;
}

export function setUserStatus(status) {
  const c = (typeof window !== 'undefined' && window.presence instanceof PresenceClient)
    ? window.presence : connect();
  return c.setStatus(status);
}

if (typeof window !== 'undefined') {
  window.setUserStatus = setUserStatus;
  if (typeof window.updateUserStatus !== 'function')
    window.updateUserStatus = updateUserStatus;
}

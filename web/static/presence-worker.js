// presence-worker.js - a module SharedWorker: ONE presence WebSocket for
// every tab of this browser on this origin (started by presence.js).
//
// The worker owns the Engine (socket, heartbeat, reconnects, idle timer).
// Its idle timer sees the activity of every tab, so the auto= each connect
// and reconnect carries is the state of the whole browser, not of one tab.
// Tabs talk to it over their MessagePort:
//   tab -> worker  {t:"hello", id, url, token?, mode?, subs?}
//                                     attach (also re-attach): mode "all"
//                                     (the default) or "subscribe", and
//                                     the users the tab follows
//                  {t:"subscribe", users} {t:"unsubscribe", users}
//                  {t:"lock", name}   a Web Lock the tab holds while alive
//                  {t:"activity"}     user activity (throttled by the tab)
//                  {t:"status", status}  manual status
//                  {t:"wake"} {t:"reconnect"} {t:"ping"} {t:"pong"} {t:"bye"}
//   worker -> tab  {t:"state"|"frame"|"manual"|"ping", ...}
//                  {t:"rehello"}      say hello again (the worker lost it)
//
// Subscriptions: the socket follows the union of what the tabs follow. A
// user is subscribed when the first tab asks for it and unsubscribed when
// the last one that asked stops (or is gone). The socket takes the whole
// organization while any tab wants it ("all"), and only the subscriptions
// once every tab is a subscriber; a change between the two reconnects
// (presence-engine.js).
//
// Liveness: a tab says "bye" on pagehide. It also pings every PING_MS, and
// the worker pings every tab every PING_MS, which the tab answers from its
// message handler (never throttled like a background page's timers). A port
// silent for more than DROP_MS (3 intervals) is dropped. Where Web Locks
// exist, each tab holds a lock for its lifetime and the worker waits on it,
// so a crashed or killed tab is noticed at once. When the last tab is gone
// the worker closes the WebSocket (after LINGER_MS, so that a page loading
// in the same tab - the worker is started with extendedLifetime where the
// browser knows it - keeps using the same socket); the server's grace
// period then makes the user OFFLINE.
import { Engine } from './presence-engine.js';

const PING_MS = 5000;
const DROP_MS = 3 * PING_MS;
const LINGER_MS = 1000;  // well under the server's grace period (5 s)

const ports = new Map();  // MessagePort -> {id, last, lock, mode, subs}
const wanted = new Map(); // user id -> how many tabs follow it
const MAX_USERS = 10000;  // docs/protocol.md: subscriptions per connection
let engine = null;
let sweeper = 0;
let linger = 0;

function post(port, msg) {
  try {
    port.postMessage(msg);
  } catch (e) {
    ports.delete(port);
  }
}

function broadcast(msg) {
  for (const port of [...ports.keys()])
    post(port, msg);
}

function replay(port) {
  post(port, { t: 'state', state: engine.state });
  const hello = engine.helloFrame();
  if (hello && engine.state === 'connected') {
    post(port, { t: 'frame', frame: hello });
    post(port, { t: 'manual', manual: engine.manual });
    if (engine.synced)
      post(port, { t: 'frame', frame: engine.snapshotFrame() });
  }
}

// The user ids of a message, as strings, at most MAX_USERS.
function userIds(list) {
  return Array.isArray(list) ? list.slice(0, MAX_USERS).map(String) : [];
}

// Adds (add) or removes ids from the tab's subscriptions, and the union's.
function follow(info, ids, add) {
  const up = [];
  const down = [];
  for (const id of ids) {
    if (add === info.subs.has(id))
      continue;
    const n = wanted.get(id) || 0;
    if (add) {
      info.subs.add(id);
      wanted.set(id, n + 1);
      if (n === 0)
        up.push(id);
    } else {
      info.subs.delete(id);
      if (n <= 1) {
        wanted.delete(id);
        down.push(id);
      } else {
        wanted.set(id, n - 1);
      }
    }
  }
  if (engine && up.length)
    engine.subscribe(up);
  if (engine && down.length)
    engine.unsubscribe(down);
}

// The socket's mode from the tabs': everything while any tab wants it.
// Tabs whose mode is not known (taken back after a silence, until their
// hello) do not count.
function updateMode() {
  let all = false;
  let sub = false;
  for (const info of ports.values()) {
    all = all || info.mode === 'all';
    sub = sub || info.mode === 'subscribe';
  }
  if (engine && (all || sub))
    engine.setSubscribing(!all);
}

function attach(port, m) {
  const mode = m.mode === 'subscribe' ? 'subscribe' : m.mode === null ? null : 'all';
  if (!engine) {
    if (typeof m.url !== 'string')
      return;
    engine = new Engine({ url: m.url, token: m.token || null, emit: broadcast,
                          subscribe: mode === 'subscribe' });
  } else if (m.token) {
    engine.setToken(m.token);
  }
  clearTimeout(linger);
  linger = 0;
  const known = ports.get(port);
  const info = { id: m.id, last: Date.now(), lock: known ? known.lock : null,
                 mode, subs: known ? known.subs : new Set() };
  ports.set(port, info);
  if (m.subs !== undefined) {
    // The tab's whole list: follow what is new, leave what it dropped.
    const now = new Set(userIds(m.subs));
    follow(info, [...info.subs].filter((id) => !now.has(id)), false);
    follow(info, [...now], true);
  }
  updateMode();
  if (!sweeper)
    sweeper = setInterval(sweep, PING_MS);
  engine.activity();  // opening (or returning to) a tab is activity
  engine.start();
  replay(port);
}

function drop(port, close) {
  const info = ports.get(port);
  if (!info)
    return;
  follow(info, [...info.subs], false);
  ports.delete(port);
  updateMode();
  if (close) {
    try {
      port.close();
    } catch (e) { /* gone */ }
  }
  if (ports.size === 0 && !linger) {
    linger = setTimeout(() => {
      linger = 0;
      if (ports.size)
        return;
      if (engine)
        engine.stop();
      clearInterval(sweeper);
      sweeper = 0;
    }, LINGER_MS);
  }
}

function watchLock(port, name) {
  const info = ports.get(port);
  if (!info || info.lock === name || !self.navigator || !navigator.locks)
    return;
  info.lock = name;
  // Granted only once the tab released it: it left, or it died.
  navigator.locks.request(name, () => {
    const now = ports.get(port);
    if (now && now.lock === name)
      drop(port, false);  // should the tab still be alive, its next ping re-attaches it
  }).catch(() => {});
}

function sweep() {
  const now = Date.now();
  for (const [port, info] of [...ports]) {
    if (now - info.last > DROP_MS)
      drop(port, false);  // a live tab that speaks again is re-attached
    else
      post(port, { t: 'ping' });
  }
}

function onMessage(port, m) {
  if (!m || typeof m !== 'object' || typeof m.t !== 'string')
    return;
  if (m.t === 'bye') {
    drop(port, true);
    return;
  }
  if (m.t === 'hello') {
    attach(port, m);
    return;
  }
  const info = ports.get(port);
  if (!info) {
    // Dropped as silent, yet alive (a frozen tab resumed): take it back.
    if (engine && (m.t === 'ping' || m.t === 'pong' || m.t === 'activity' || m.t === 'wake')) {
      // Its mode and subscriptions went with it: asked for again.
      attach(port, { id: m.id, mode: null });
      post(port, { t: 'rehello' });
    } else {
      return;
    }
  } else {
    info.last = Date.now();
  }
  switch (m.t) {
  case 'lock':
    if (typeof m.name === 'string')
      watchLock(port, m.name);
    break;
  case 'activity':
    engine.activity();
    break;
  case 'subscribe':
  case 'unsubscribe':
    follow(ports.get(port), userIds(m.users), m.t === 'subscribe');
    break;
  case 'status':
    try {
      engine.setStatus(m.status);
    } catch (e) {
      post(port, { t: 'frame', frame: { type: 'error', code: 'invalid_status', message: e.message } });
    }
    break;
  case 'wake':
    engine.wake();
    break;
  case 'reconnect':
    engine.reconnect();
    break;
  case 'ping':
    post(port, { t: 'pong' });
    break;
  default:
    break;
  }
}

self.addEventListener('connect', (e) => {
  const port = e.ports[0];
  port.onmessage = (ev) => onMessage(port, ev.data);  // also starts the port
});

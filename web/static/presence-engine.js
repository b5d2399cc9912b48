// presence-engine.js - the one WebSocket to /ws/presence/ and everything
// that lives with it: heartbeat, reconnects with backoff, the idle detector
// and the organization's member map.
//
// It runs either inside the SharedWorker (presence-worker.js, one for all
// tabs of the browser) or, where that is unavailable, inside the page
// (presence.js, "direct" mode). Every connect and reconnect states the idle
// detector's state in the URL (auto=ONLINE|AWAY|OFFLINE), so the server
// opens the connection with it. It never touches the DOM. It reports through
// emit(msg) with these messages:
//   {t:"state", state:"connecting"|"connected"|"offline", retryIn?:ms}
//   {t:"frame", frame}   a server frame: hello, snapshot, presence, online,
//                        error (and a synthetic error {code:"logged_out"}
//                        on 1008)
//   {t:"manual", manual} the caller's manual status changed (null = none)
//
// Subscriptions (docs/protocol.md "Subscriptions (large organizations)").
// By default the socket takes the whole organization: a snapshot of every
// member, then every event. In subscribing mode (setSubscribing(true)) it
// connects with ?subscribe=1 and follows only the users of subscribe():
// each socket says "subscribe" for all of them after its hello, and the
// server answers with partial snapshots ({partial:true}, only those
// users), which are merged, not put in place of the member map. A socket
// cannot change mode, so a change of mode reconnects (inside the server's
// grace period: nobody sees a change). Events of users nobody follows,
// which a subscriber of a smaller organization still receives, are
// dropped here.

export const STATUSES = ['ONLINE', 'AWAY', 'BUSY', 'OFFLINE'];

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_MAX_MS = 30000;
// A connection that stayed open this long resets the backoff.
const HEALTHY_MS = 10000;
// After a wake-up (tab visible, network back) an open socket must answer a
// ping within this time, else it is presumed dead (laptop sleep, NAT drop).
const PROBE_MS = 5000;
// docs/protocol.md: at most this many ids in one subscribe message.
const SUBSCRIBE_CHUNK = 1000;

// Full jitter: a random delay in [0, min(max, base * 2^attempt)).
export function backoffDelay(attempt, base = BACKOFF_BASE_MS,
                             max = BACKOFF_MAX_MS, random = Math.random) {
  const cap = Math.min(max, base * 2 ** Math.min(attempt, 20));
  return Math.floor(random() * cap);
}

function member(f) {
  return {
    user: String(f.user),
    name: typeof f.name === 'string' ? f.name : String(f.user),
    status: STATUSES.includes(f.status) ? f.status : 'OFFLINE',
    last_seen: typeof f.last_seen === 'number' ? f.last_seen : null,
    ...(f.message && typeof f.message === 'object' ? { message: f.message } : {}),
    ...(f.dnd && typeof f.dnd === 'object' ? { dnd: f.dnd } : {}),
    ...(typeof f.tz === 'string' ? { tz: f.tz } : {}),
  };
}

export class Engine {
  constructor({ url, token = null, emit, WebSocketImpl = globalThis.WebSocket,
                now = () => Date.now(), subscribe = false }) {
    this.url = url;
    this.token = token;
    this.emit = emit;
    this.WS = WebSocketImpl;
    this.now = now;

    this.ws = null;          // the single current socket; others are stale
    this.wanted = false;     // start()ed and not stopped
    this.state = 'offline';
    this.attempt = 0;
    this.retryTimer = 0;
    this.beatTimer = 0;
    this.probeTimer = 0;
    this.idleTimer = 0;
    this.openedAt = 0;
    this.lastFrame = 0;
    this.lastPing = 0;

    this.hello = null;       // last hello, kept current (status, manual)
    this.synced = false;     // a snapshot arrived on the current socket
    this.seq = 0;
    this.members = new Map();
    this.manual = null;
    this.pendingManual = null;

    this.subscribing = !!subscribe;  // the next socket opens with ?subscribe=1
    this.sockSubscribing = false;    // ... the current one did
    this.greeted = false;            // the current socket said hello
    this.subs = new Set();           // the users followed
    this.online = null;              // org-wide online count (subscribers)

    this.heartbeat = 30;
    this.awayAfter = 300;
    this.offlineAfter = 1800;
    this.lastActivity = now();
    this.autoSent = null;    // this connection's auto status as the server has it
    this.connectAuto = 'ONLINE';  // the auto= of the current socket's URL
  }

  // ---- lifecycle ------------------------------------------------------

  start() {
    this.wanted = true;
    if (!this.ws && !this.retryTimer)
      this._open();
  }

  // Reconnect at once if not connected (network back, tab visible); if a
  // socket looks open, make sure it still is.
  wake() {
    this.wanted = true;
    if (this.ws) {
      if (this.ws.readyState === 1)
        this._probe();
      return;
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this._open();
  }

  // Drop the current socket (if any) and connect again now.
  reconnect() {
    this.wanted = true;
    this._kill(false);
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this._open();
  }

  // Subscribing mode on or off (see the file comment): a socket in the
  // other mode is replaced.
  setSubscribing(on) {
    on = !!on;
    if (on === this.subscribing)
      return;
    this.subscribing = on;
    if (this.ws)
      this.reconnect();
  }

  // Follow these users (ids); those followed already are skipped.
  subscribe(users) {
    const fresh = [];
    for (const u of users) {
      const id = String(u);
      if (!this.subs.has(id)) {
        this.subs.add(id);
        fresh.push(id);
      }
    }
    if (fresh.length && this._subscribed())
      this._sendUsers('subscribe', fresh);
  }

  // Stop following these users: forgotten here, and unsubscribed on a
  // subscribing socket.
  unsubscribe(users) {
    const gone = [];
    for (const u of users) {
      const id = String(u);
      if (this.subs.delete(id)) {
        gone.push(id);
        if (this.sockSubscribing && id !== this._me())
          this.members.delete(id);
      }
    }
    if (gone.length && this._subscribed())
      this._sendUsers('unsubscribe', gone);
  }

  stop() {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this._kill(false);
    this._setState('offline');
  }

  setToken(token) {
    if (token)
      this.token = token;
  }

  // ---- public actions -------------------------------------------------

  // Manual status: BUSY, AWAY, OFFLINE ("appear offline"), ONLINE clears.
  // Returns true when it went out on an open socket; otherwise it is sent
  // as soon as the next connection says hello.
  setStatus(status) {
    if (!STATUSES.includes(status))
      throw new TypeError('status must be one of ' + STATUSES.join(', '));
    this._setManual(status === 'ONLINE' ? null : status);
    if (this._send({ type: 'status', status })) {
      this.pendingManual = null;
      return true;
    }
    this.pendingManual = status;
    return false;
  }

  // User activity somewhere (this page, or any tab through the worker).
  activity() {
    this.lastActivity = this.now();
    if (this.autoSent && this.autoSent !== 'ONLINE')
      this._syncAuto();
    else if (!this.idleTimer)
      this._scheduleIdle();
  }

  // What a newly attached tab is given: the whole map, which a
  // subscribing socket's is only partial.
  snapshotFrame() {
    const f = { type: 'snapshot', seq: this.seq, members: [...this.members.values()].map((m) => ({ ...m })) };
    if (this.sockSubscribing) {
      f.partial = true;
      f.online = this.online;
    }
    return f;
  }

  _me() {
    return this.hello && this.hello.user != null ? String(this.hello.user) : null;
  }

  // A socket that follows only its subscriptions, past its hello.
  _subscribed() {
    return this.sockSubscribing && this.greeted && this.ws && this.ws.readyState === 1;
  }

  _sendUsers(type, ids) {
    for (let i = 0; i < ids.length; i += SUBSCRIBE_CHUNK)
      this._send({ type, users: ids.slice(i, i + SUBSCRIBE_CHUNK) });
  }

  helloFrame() {
    return this.hello ? { ...this.hello, manual: this.manual } : null;
  }

  // ---- socket ---------------------------------------------------------

  // The upgrade URL: the token if any, and auto= the idle detector's state
  // now, so that the server opens the connection with it and an idle person
  // does not flap ONLINE then AWAY on every reconnect.
  _fullUrl(auto) {
    const u = new URL(this.url);
    if (this.token)
      u.searchParams.set('token', this.token);
    u.searchParams.set('auto', auto);
    if (this.subscribing)
      u.searchParams.set('subscribe', '1');
    return u.href;
  }

  _open() {
    if (!this.wanted || this.ws)
      return;
    let ws;
    const auto = this._wantedAuto();
    try {
      ws = new this.WS(this._fullUrl(auto));
    } catch (e) {
      this._setState('offline');
      this._scheduleRetry();
      return;
    }
    this.ws = ws;
    this.connectAuto = auto;
    this.sockSubscribing = this.subscribing;
    this.synced = false;
    this.openedAt = 0;
    this._setState('connecting');
    ws.onopen = () => {
      if (this.ws !== ws)
        return;
      this.openedAt = this.lastFrame = this.now();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws)
        return;
      this.lastFrame = this.now();
      this._frame(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws)
        return;
      this._detach();
      this._dropped(ev.code, ev.reason);
    };
    ws.onerror = () => {};  // a close event follows
  }

  // Forget the current socket: its events are ignored from now on.
  _detach() {
    const ws = this.ws;
    this.ws = null;
    clearInterval(this.beatTimer);
    clearTimeout(this.probeTimer);
    this.beatTimer = this.probeTimer = 0;
    this.autoSent = null;
    this.synced = false;
    this.greeted = false;
    if (ws)
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    return ws;
  }

  // Close the current socket ourselves; with retry, treat it as a drop.
  _kill(retry) {
    const ws = this._detach();
    if (ws) {
      try {
        ws.close(1000);
      } catch (e) { /* already closing */ }
    }
    if (retry && ws)
      this._dropped(1006, 'no answer');
  }

  _dropped(code, reason) {
    const lived = this.openedAt ? this.now() - this.openedAt : 0;
    if (lived >= HEALTHY_MS)
      this.attempt = 0;
    if (code === 1008) {
      // The login session was logged out: reconnecting cannot succeed.
      this.wanted = false;
      this.emit({ t: 'frame', frame: { type: 'error', code: 'logged_out', message: reason || 'logged out' } });
      this._setState('offline');
      return;
    }
    this._scheduleRetry();
  }

  _scheduleRetry() {
    if (!this.wanted) {
      this._setState('offline');
      return;
    }
    clearTimeout(this.retryTimer);
    const delay = backoffDelay(this.attempt++);
    this._setState('offline', delay);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = 0;
      this._open();
    }, delay);
  }

  _send(obj) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1)
      return false;
    try {
      ws.send(JSON.stringify(obj));
      return true;
    } catch (e) {
      return false;
    }
  }

  _setState(state, retryIn) {
    if (state === this.state && retryIn === undefined)
      return;
    this.state = state;
    const msg = { t: 'state', state };
    if (retryIn !== undefined)
      msg.retryIn = retryIn;
    this.emit(msg);
  }

  _setManual(manual) {
    if (this.hello)
      this.hello.manual = manual;
    if (manual === this.manual)
      return;
    this.manual = manual;
    this.emit({ t: 'manual', manual });
  }

  // ---- heartbeat ------------------------------------------------------

  _startHeartbeat() {
    clearInterval(this.beatTimer);
    this.lastPing = 0;
    this.beatTimer = setInterval(() => {
      // The previous ping got no answer (nor anything else): dead socket.
      if (this.lastPing && this.lastFrame < this.lastPing) {
        this._kill(true);
        return;
      }
      this.lastPing = this.now();
      this._send({ type: 'ping' });
    }, this.heartbeat * 1000);
  }

  _probe() {
    if (this.probeTimer)
      return;
    const asked = this.now();
    this._send({ type: 'ping' });
    this.probeTimer = setTimeout(() => {
      this.probeTimer = 0;
      if (this.ws && this.lastFrame < asked)
        this._kill(true);
    }, PROBE_MS);
  }

  // ---- frames ---------------------------------------------------------

  _frame(text) {
    let f;
    try {
      f = JSON.parse(text);
    } catch (e) {
      return;
    }
    if (!f || typeof f !== 'object')
      return;
    switch (f.type) {
    case 'hello':
      this._hello(f);
      break;
    case 'snapshot': {
      const got = (Array.isArray(f.members) ? f.members : []).filter((m) => m && m.user != null).map(member);
      if (f.partial === true) {
        // The users it names, as of its seq. The first one of a socket
        // names nobody: what the map holds of users no longer followed
        // (another socket's, another mode's) goes.
        if (!this.synced)
          for (const id of [...this.members.keys()])
            if (!this.subs.has(id) && id !== this._me())
              this.members.delete(id);
        for (const m of got)
          this.members.set(m.user, m);
        if (typeof f.online === 'number')
          this.online = f.online;
      } else {
        this.members = new Map(got.map((m) => [m.user, m]));
      }
      this.seq = typeof f.seq === 'number' ? f.seq : 0;
      this.synced = true;
      const out = f.partial === true
        ? { type: 'snapshot', partial: true, seq: this.seq, online: this.online, members: got }
        : this.snapshotFrame();
      this.emit({ t: 'frame', frame: out });
      break;
    }
    case 'online':
      if (typeof f.online === 'number')
        this.online = f.online;
      this.emit({ t: 'frame', frame: f });
      break;
    case 'presence': {
      if (f.user == null)
        return;
      if (typeof f.seq === 'number') {
        if (f.seq <= this.seq)
          return;  // already in the snapshot
        this.seq = f.seq;
      }
      // A subscriber of an organization under large_org is sent every
      // event: only those of the users followed (and the caller's own)
      // are of use.
      if (this.sockSubscribing && !this.subs.has(String(f.user)) && String(f.user) !== this._me())
        return;
      const m = member(f);
      this.members.set(m.user, m);
      if (this.hello && m.user === String(this.hello.user)) {
        this.hello.status = m.status;
        if (typeof f.name === 'string')
          this.hello.name = f.name;
        // A manual change made elsewhere (another device, the HTTP API).
        if (f.reason === 'manual')
          this._setManual(m.status === 'ONLINE' ? null : m.status);
      }
      this.emit({ t: 'frame', frame: { ...f, ...m } });
      break;
    }
    case 'pong':
      break;
    default:
      this.emit({ t: 'frame', frame: f });
    }
  }

  _hello(f) {
    const num = (v, d) => (typeof v === 'number' && v > 0 ? v : d);
    this.heartbeat = num(f.heartbeat, 30);
    this.awayAfter = num(f.away_after, 300);
    this.offlineAfter = num(f.offline_after, 1800);
    this.hello = { ...f };
    this.manual = f.manual === undefined ? null : f.manual;
    // The connection started with the auto status of its URL; _syncAuto()
    // below reports any change since. A server that ignores auto= starts
    // it ONLINE: then say it again rather than stay ONLINE while idle (with
    // another connection ONLINE that is a no-op).
    this.autoSent = this.connectAuto;
    if (this.autoSent !== 'ONLINE' && this.manual === null && f.status === 'ONLINE')
      this.autoSent = 'ONLINE';
    this.greeted = true;
    this._startHeartbeat();
    this.emit({ t: 'frame', frame: this.helloFrame() });
    this.emit({ t: 'manual', manual: this.manual });
    this._setState('connected');
    if (this.pendingManual) {
      const s = this.pendingManual;
      this.pendingManual = null;
      this.setStatus(s);
    }
    this._syncAuto();
    // A new socket follows nobody yet.
    if (this._subscribed() && this.subs.size)
      this._sendUsers('subscribe', [...this.subs]);
  }

  // ---- idle detector --------------------------------------------------

  _wantedAuto() {
    const idle = this.now() - this.lastActivity;
    if (idle >= this.offlineAfter * 1000)
      return 'OFFLINE';
    if (idle >= this.awayAfter * 1000)
      return 'AWAY';
    return 'ONLINE';
  }

  // Report the auto status if it differs from what the server has.
  _syncAuto() {
    if (this.autoSent) {
      const want = this._wantedAuto();
      if (want !== this.autoSent &&
          this._send({ type: 'status', status: want, auto: true }))
        this.autoSent = want;
    }
    this._scheduleIdle();
  }

  _scheduleIdle() {
    clearTimeout(this.idleTimer);
    this.idleTimer = 0;
    const idle = this.now() - this.lastActivity;
    const away = this.awayAfter * 1000;
    const off = this.offlineAfter * 1000;
    const next = idle < away ? away - idle : idle < off ? off - idle : -1;
    if (next >= 0)
      this.idleTimer = setTimeout(() => {
        this.idleTimer = 0;
        this._syncAuto();
      }, next + 20);
  }
}

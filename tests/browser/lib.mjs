import { before, after } from 'node:test';
// Helpers for the end-to-end browser tests of presenced.
//
// Each test file starts its own server (temp dir, demo data, short timings)
// and one headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core); each simulated person gets their own browser context.
// What is asserted is the DOM contract of the pages (README.md beside this
// file): [data-user-id][data-status] persons with .person-name, .status-dot
// (status-<s>, aria-label) and .status-text, body[data-ready=1],
// #conn-state[data-state], #status-picker, #online-count, #logout,
// form#login-form / #login-error, and the HTTP API of docs/protocol.md.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const BIN = process.env.PRESENCED_BIN || path.join(REPO, 'build', 'presenced');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const JWT_SECRET = 'browser-test-secret-0123456789abcdef01234567'; // 44 chars
export const PASSWORD = 'demo';

// Timings every server starts with (a test file may override).
export const DEFAULT_ENV = {
  PRESENCED_GRACE: '1s',
  PRESENCED_AWAY_AFTER: '3s',
  PRESENCED_OFFLINE_AFTER: '6s',
  PRESENCED_HEARTBEAT: '1s',
  PRESENCED_LOGIN_GRACE: '3s',
  PRESENCED_RESTART_GRACE: '2s',
  PRESENCED_FLUSH: '500ms',
  PRESENCED_LOGIN_LIMIT: '1000',
  PRESENCED_LOG_LEVEL: 'debug',
  // Users added here share the demo password, shorter than the default
  // minimum `user add` accepts.
  PRESENCED_MIN_PASSWORD: '4',
};

export const STATUSES = ['ONLINE', 'AWAY', 'BUSY', 'OFFLINE'];
export const LABEL = { ONLINE: 'Online', AWAY: 'Away', BUSY: 'Busy', OFFLINE: 'Offline' };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function email(id) {
  return `${id}@demo.example`;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Polls fn() until it returns a truthy value; throws after timeout with the
// last value seen.
export async function waitUntil(fn, timeout, what = 'condition', interval = 100) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
    } catch (e) {
      last = e;
    }
    if (last && !(last instanceof Error)) return last;
    if (Date.now() >= deadline) {
      throw new assert.AssertionError({
        message: `timed out after ${timeout} ms waiting for ${what} (last: ${
          last instanceof Error ? last.message : JSON.stringify(last)
        })`,
      });
    }
    await sleep(interval);
  }
}

// ------------------------------------------------------------- server ----

// Servers still running when node exits are killed (a failed test, ^C).
const LIVE = new Set();
process.on('exit', () => {
  for (const proc of LIVE) {
    try {
      proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => process.exit(130));
}

export class Server {
  constructor(env = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'presenced-browser-'));
    this.db = path.join(this.dir, 'presenced.db');
    this.logFile = path.join(this.dir, 'server.log');
    this.env = { ...DEFAULT_ENV, ...env };
    this.proc = null;
    this.port = null;
    this.exited = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  // Runs a CLI subcommand on this server's database; returns trimmed stdout.
  cli(args, input) {
    const r = spawnSync(BIN, [...args, '--db', this.db], {
      input: input ?? '',
      encoding: 'utf8',
      env: { ...process.env, ...this.env, PRESENCED_JWT_SECRET: JWT_SECRET },
      timeout: 30_000,
    });
    if (r.status !== 0) {
      throw new Error(`presenced ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`);
    }
    return r.stdout.trim();
  }

  seedDemo() {
    this.cli(['demo']);
  }

  addOrg(org) {
    return this.cli(['org', 'add', org]);
  }

  addUser({ org, id, email: mail, name, password = PASSWORD }) {
    return this.cli(['user', 'add', '--org', org, '--email', mail, '--name', name, '--id', id],
      password + '\n');
  }

  addChannel({ org, name, members }) {
    return this.cli(['channel', 'add', '--org', org, '--name', name, '--members', members.join(',')]);
  }

  async start() {
    if (!fs.existsSync(BIN)) throw new Error(`no server binary at ${BIN} (set PRESENCED_BIN)`);
    if (!this.port) this.port = await freePort();
    const log = fs.openSync(this.logFile, 'a');
    fs.writeSync(log, `---- start ${new Date().toISOString()} on port ${this.port}\n`);
    this.proc = spawn(BIN, ['serve', '--db', this.db, '--listen', `127.0.0.1:${this.port}`], {
      env: { ...process.env, ...this.env, PRESENCED_JWT_SECRET: JWT_SECRET },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    const proc = this.proc;
    LIVE.add(proc);
    this.exited = new Promise((resolve) => proc.once('exit', (code, sig) => resolve({ code, sig })));
    proc.once('exit', () => {
      LIVE.delete(proc);
      if (this.proc === proc) this.proc = null;
    });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (!this.proc) throw new Error(`server exited during start:\n${this.logTail()}`);
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.status === 200) return this;
      } catch {
        /* not yet listening */
      }
      if (Date.now() > deadline) throw new Error(`server not ready in 15 s:\n${this.logTail()}`);
      await sleep(50);
    }
  }

  // SIGTERM, wait; SIGKILL if it does not exit within 10 s.
  async stop() {
    const proc = this.proc;
    if (!proc) return null;
    const exited = this.exited;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    const res = await exited;
    clearTimeout(t);
    return res;
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  // Always safe: stops the server and removes the temp dir (kept when
  // KEEP_TMP=1 for debugging).
  async cleanup() {
    try {
      await this.stop();
    } finally {
      if (process.env.KEEP_TMP !== '1') fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  logTail(n = 40) {
    try {
      const lines = fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n');
      return lines.slice(-n).join('\n');
    } catch {
      return '(no server log)';
    }
  }

  // The server log from here on: mark = logMark(); ...; logSince(mark).
  logMark() {
    try {
      return fs.statSync(this.logFile).size;
    } catch {
      return 0;
    }
  }

  logSince(mark) {
    try {
      return fs.readFileSync(this.logFile).subarray(mark).toString('utf8');
    } catch {
      return '';
    }
  }

  // Every presence event the server announced about userId in the log text
  // (log_level debug: "presence ORG/USER STATUS (reason) seq N").
  announced(text, userId) {
    const re = new RegExp(`presence [^/\\s]+/${userId} (\\w+) \\((\\w+)\\) seq (\\d+)`, 'g');
    return [...text.matchAll(re)].map((m) => ({ status: m[1], reason: m[2], seq: Number(m[3]) }));
  }

  // A plain HTTP client of the JSON API holding its own session cookie (or
  // a bearer token), for setup and for checks the pages do not show.
  async apiLogin(userId, password = PASSWORD, mail = email(userId)) {
    const r = await fetch(`${this.url}/api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: mail, password }),
    });
    const body = await r.json();
    assert.equal(r.status, 200, `api login of ${mail}: ${JSON.stringify(body)}`);
    const cookie = r.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    return new ApiClient(this, cookie, body.token, body.user);
  }
}

export class ApiClient {
  constructor(server, cookie, token, user) {
    this.server = server;
    this.cookie = cookie;
    this.token = token;
    this.user = user;
  }

  async req(method, p, body) {
    const headers = { Cookie: this.cookie, 'X-Requested-With': 'x' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(`${this.server.url}${p}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: r.status, body: json };
  }

  async get(p) {
    const r = await this.req('GET', p);
    assert.equal(r.status, 200, `GET ${p}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async setStatus(status) {
    const r = await this.req('PUT', '/api/status', { status });
    assert.equal(r.status, 200, `PUT /api/status ${status}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async logout() {
    return this.req('POST', '/api/logout');
  }

  async member(userId) {
    const p = await this.get('/api/presence');
    return p.members.find((m) => m.user === userId);
  }

  async channelId(name) {
    const { channels } = await this.get('/api/channels');
    const c = channels.find((x) => x.name === name);
    assert.ok(c, `no channel named ${name} in ${JSON.stringify(channels.map((x) => x.name))}`);
    return c.id;
  }

  async projectId(name) {
    const { projects } = await this.get('/api/projects');
    const p = projects.find((x) => x.name === name);
    assert.ok(p, `no project named ${name} in ${JSON.stringify(projects.map((x) => x.name))}`);
    return p.id;
  }
}

// ------------------------------------------------------------ browser ----

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
}

// One simulated person: a browser context (own cookies, own SharedWorker),
// with every page's console errors, page errors and dialogs recorded.
export class Person {
  constructor(browser, server, userId, { mail = email(userId), password = PASSWORD } = {}) {
    this.browser = browser;
    this.server = server;
    this.userId = userId;
    this.mail = mail;
    this.password = password;
    this.context = null;
    this.pages = [];
    this.consoleErrors = [];
    this.pageErrors = [];
    this.dialogs = [];
  }

  async open() {
    this.context = await this.browser.newContext({
      baseURL: this.server.url,
      viewport: { width: 1200, height: 800 },
    });
    this.context.setDefaultTimeout(15_000);
    this.context.setDefaultNavigationTimeout(15_000);
    this.context.on('page', (p) => this._watch(p));
    return this;
  }

  _watch(page) {
    if (this.pages.includes(page)) return;
    this.pages.push(page);
    const tag = `[${this.userId}]`;
    page.on('console', (m) => {
      if (m.type() === 'error') this.consoleErrors.push(`${tag} ${page.url()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => this.pageErrors.push(`${tag} ${page.url()}: ${e.message}`));
    page.on('dialog', (d) => {
      this.dialogs.push(`${tag} ${page.url()}: ${d.type()} ${d.message()}`);
      d.dismiss().catch(() => {});
    });
  }

  async newPage() {
    const page = await this.context.newPage();
    this._watch(page);
    return page;
  }

  get page() {
    return this.pages.find((p) => !p.isClosed());
  }

  // Signs in through the real form on /login and waits for the dashboard.
  async login(page) {
    page = page || this.page || (await this.newPage());
    await loginForm(page, this.mail, this.password);
    return page;
  }

  async close() {
    if (this.context) await this.context.close().catch(() => {});
    this.context = null;
  }

  diagnostics() {
    const out = [];
    if (this.pageErrors.length) out.push(`page errors ${this.userId}:\n  ${this.pageErrors.join('\n  ')}`);
    if (this.consoleErrors.length) out.push(`console errors ${this.userId}:\n  ${this.consoleErrors.join('\n  ')}`);
    if (this.dialogs.length) out.push(`dialogs ${this.userId}:\n  ${this.dialogs.join('\n  ')}`);
    return out.join('\n');
  }
}

export async function loginForm(page, mail, password = PASSWORD) {
  await page.goto('/login');
  await page.waitForSelector('form#login-form');
  await page.fill('form#login-form input[name=email]', mail);
  await page.fill('form#login-form input[name=password]', password);
  await Promise.all([
    page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 15_000 }),
    page.click('form#login-form button[type=submit]'),
  ]);
  await waitReady(page);
  return page;
}

// Waits for document.body.dataset.ready === "1" (API data and snapshot
// rendered).
export async function waitReady(page, timeout = 15_000) {
  try {
    await page.waitForFunction(() => document.body && document.body.dataset.ready === '1', null, {
      timeout,
      polling: 50,
    });
  } catch (e) {
    const info = await page
      .evaluate(() => ({
        url: location.href,
        ready: document.body && document.body.dataset.ready,
        conn: document.querySelector('#conn-state')?.dataset.state,
      }))
      .catch(() => ({}));
    throw new assert.AssertionError({
      message: `page never became ready (body[data-ready=1]) within ${timeout} ms: ${JSON.stringify(info)}`,
    });
  }
}

export async function goto(page, p) {
  await page.goto(p);
  await waitReady(page);
  return page;
}

// Describes every rendered person element of userId on the page.
export async function personInfo(page, userId) {
  return page.evaluate((uid) => {
    return [...document.querySelectorAll(`[data-user-id="${CSS.escape(uid)}"]`)].map((el) => {
      const dot = el.querySelector('.status-dot');
      const text = el.querySelector('.status-text');
      const name = el.querySelector('.person-name');
      const last = el.querySelector('.last-seen');
      return {
        status: el.getAttribute('data-status'),
        dotClass: dot ? [...dot.classList].filter((c) => c.startsWith('status-') && c !== 'status-dot') : null,
        aria: dot ? dot.getAttribute('aria-label') : null,
        text: text ? text.textContent.trim() : null,
        name: name ? name.textContent : null,
        lastSeen: last ? last.textContent.trim() : null,
      };
    });
  }, userId);
}

function personMatches(info, status) {
  return (
    info.status === status &&
    info.dotClass !== null &&
    info.dotClass.length === 1 &&
    info.dotClass[0] === `status-${status.toLowerCase()}` &&
    info.aria === LABEL[status] &&
    info.text === LABEL[status]
  );
}

// Waits until the page shows userId (at least one element) and every element
// of userId has data-status=status, a .status-dot with exactly the class
// status-<status> and aria-label, and .status-text with the label.
export async function waitForStatus(page, userId, status, timeout = 5000) {
  assert.ok(STATUSES.includes(status), `bad status ${status}`);
  const want = { status, dot: `status-${status.toLowerCase()}`, label: LABEL[status] };
  try {
    await page.waitForFunction(
      ({ uid, want }) => {
        const els = [...document.querySelectorAll(`[data-user-id="${CSS.escape(uid)}"]`)];
        if (!els.length) return false;
        return els.every((el) => {
          const dot = el.querySelector('.status-dot');
          const text = el.querySelector('.status-text');
          if (!dot || !text) return false;
          const cls = [...dot.classList].filter((c) => c.startsWith('status-') && c !== 'status-dot');
          return (
            el.getAttribute('data-status') === want.status &&
            cls.length === 1 &&
            cls[0] === want.dot &&
            dot.getAttribute('aria-label') === want.label &&
            text.textContent.trim() === want.label
          );
        });
      },
      { uid: userId, want },
      { timeout, polling: 50 },
    );
  } catch (e) {
    if (page.isClosed()) throw e;
    const seen = await personInfo(page, userId).catch((x) => x.message);
    throw new assert.AssertionError({
      message: `${page.url()}: ${userId} not shown as ${status} within ${timeout} ms; elements: ${JSON.stringify(seen)}`,
    });
  }
}

// Asserts (now, no waiting) that every element of userId shows status.
export async function assertStatus(page, userId, status) {
  const infos = await personInfo(page, userId);
  assert.ok(infos.length > 0, `${page.url()}: no element with data-user-id=${userId}`);
  for (const i of infos) {
    assert.ok(personMatches(i, status), `${page.url()}: ${userId} expected ${status}, got ${JSON.stringify(i)}`);
  }
  return infos;
}

// Starts recording, in the page, every status the page shows for the given
// users (data-status of any of their elements, in order, with times) until
// the page navigates. Read with readStatusLog.
export async function recordStatuses(page, userIds) {
  await page.evaluate((uids) => {
    const log = (window.__statusLog = window.__statusLog || {});
    const read = () => {
      for (const uid of uids) {
        const els = [...document.querySelectorAll(`[data-user-id="${CSS.escape(uid)}"]`)];
        const sts = els.map((e) => e.getAttribute('data-status'));
        const key = !sts.length ? 'NONE' : sts.every((x) => x === sts[0]) ? sts[0] : `MIXED(${sts.join(',')})`;
        const l = (log[uid] = log[uid] || []);
        if (!l.length || l[l.length - 1].key !== key) {
          l.push({ key, statuses: sts, t: Date.now() });
        }
      }
    };
    read();
    const mo = new MutationObserver(read);
    mo.observe(document.documentElement, { subtree: true, childList: true, attributes: true, characterData: true });
    window.__statusObserver = mo;
  }, userIds);
}

export async function readStatusLog(page, userId) {
  return page.evaluate((uid) => (window.__statusLog && window.__statusLog[uid]) || [], userId);
}

// Records, in the page, every presence event its client receives (and the
// status each snapshot gives) until the page navigates. Read with
// readPresenceEvents(page, userId).
export async function recordPresenceEvents(page) {
  await page.evaluate(() => {
    const log = (window.__presenceLog = []);
    const p = window.presence;
    p.on('presence', (m) => log.push({ kind: 'presence', user: String(m.user), status: m.status,
      reason: m.reason, seq: m.seq, t: Date.now() }));
    p.on('snapshot', (s) => {
      for (const m of s.members) {
        log.push({ kind: 'snapshot', user: String(m.user), status: m.status, seq: s.seq, t: Date.now() });
      }
    });
  });
}

export async function readPresenceEvents(page, userId) {
  return page.evaluate((uid) => (window.__presenceLog || []).filter((e) => e.user === uid), userId);
}

// Records every data-state of #conn-state (and whether it was ever missing).
export async function recordConnState(page) {
  await page.evaluate(() => {
    const log = (window.__connLog = []);
    let last;
    const read = () => {
      const el = document.querySelector('#conn-state');
      const s = el ? el.getAttribute('data-state') : null;
      if (s !== last) {
        last = s;
        log.push({ state: s, t: Date.now() });
      }
    };
    read();
    new MutationObserver(read).observe(document.documentElement, {
      subtree: true,
      childList: true,
      attributes: true,
    });
  });
}

export async function readConnLog(page) {
  return page.evaluate(() => window.__connLog || []);
}

export async function connState(page) {
  return page.evaluate(() => document.querySelector('#conn-state')?.getAttribute('data-state') ?? null);
}

// Wraps a test body so that a failure carries the server log tail and the
// console/page errors of every person involved (with BROWSER_TEST_VERBOSE=1
// the console/page errors are printed for passing tests too).
/* One demo-seeded server and one Chromium for a describe() block: registers
 * the before/after hooks and returns what the tests use. person(id) opens a
 * browser context for that demo user; run(fn) wraps a test body so that a
 * failure prints the server log and every page's console. prepare(server),
 * if given, runs between seeding and starting the server. */
export function demoSuite(env = {}, { prepare } = {}) {
  const s = { server: null, browser: null, people: [] };
  s.person = async (id) => {
    const p = new Person(s.browser, s.server, id);
    s.people.push(p);
    return p.open();
  };
  s.run = (fn) => withDiagnostics(() => s.server, () => s.people, fn);
  before(async () => {
    s.server = new Server(env);
    s.server.seedDemo();
    if (prepare)
      prepare(s.server);  // more data in the database before it starts
    await s.server.start();
    s.browser = await launchBrowser();
  });
  after(async () => {
    for (const p of s.people) await p.close();
    if (s.browser) await s.browser.close();
    if (s.server) await s.server.cleanup();
  });
  return s;
}

export function withDiagnostics(getServer, getPeople, fn) {
  return async (t) => {
    try {
      await fn(t);
      if (process.env.BROWSER_TEST_VERBOSE === '1') {
        for (const p of getPeople() || []) {
          const d = p && p.diagnostics();
          if (d) t.diagnostic(d);
        }
      }
    } catch (e) {
      const parts = [];
      for (const p of getPeople() || []) {
        const d = p && p.diagnostics();
        if (d) parts.push(d);
      }
      const s = getServer();
      if (s) parts.push(`server log (tail):\n${s.logTail(30)}`);
      if (parts.length && e && typeof e.message === 'string') {
        try {
          e.message += `\n---- diagnostics ----\n${parts.join('\n')}`;
        } catch {
          /* read-only message */
        }
      }
      throw e;
    }
  };
}

// Records the WebSocket frames of every SharedWorker of `browser` (and of
// pages, through playwright's page 'websocket' event, for a page that opens
// its socket itself). Playwright detaches from shared workers, so this uses
// a browser CDP session: Target.setDiscoverTargets, then a non-flat
// Target.attachToTarget to each shared_worker (those running now and those
// started later) and Network.enable in it.
// Caveats: frames a worker received before Network.enable are not seen; and
// while DevTools is attached Chromium keeps a SharedWorker's target when its
// last page goes away, and a page navigating in that state never reaches a
// new worker. So: attach once the pages are loaded, make the socket
// reconnect if hello/snapshot matter, and stop() before any navigation.
export async function watchFrames(browser) {
  const cdp = await browser.newBrowserCDPSession();
  const frames = [];
  const attached = new Map(); // targetId -> sessionId
  const workers = [];
  let nextId = 1;
  const sendTo = (sessionId, method, params = {}) =>
    cdp
      .send('Target.sendMessageToTarget', {
        sessionId,
        message: JSON.stringify({ id: nextId++, method, params }),
      })
      .catch(() => {});
  const attach = async (info) => {
    if (info.type !== 'shared_worker' || attached.has(info.targetId)) return;
    attached.set(info.targetId, null);
    try {
      const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: info.targetId, flatten: false });
      attached.set(info.targetId, sessionId);
      workers.push({ url: info.url, sessionId });
      await sendTo(sessionId, 'Network.enable');
      await sendTo(sessionId, 'Runtime.runIfWaitingForDebugger');
    } catch {
      /* the worker went away */
    }
  };
  cdp.on('Target.targetCreated', (ev) => attach(ev.targetInfo));
  cdp.on('Target.receivedMessageFromTarget', (ev) => {
    let m;
    try {
      m = JSON.parse(ev.message);
    } catch {
      return;
    }
    if (m.method === 'Network.webSocketFrameReceived' || m.method === 'Network.webSocketFrameSent') {
      frames.push({
        source: `worker:${ev.sessionId}`,
        dir: m.method.endsWith('Received') ? 'in' : 'out',
        data: m.params.response.payloadData,
        t: Date.now(),
      });
    } else if (m.method === 'Network.webSocketCreated') {
      frames.push({ source: `worker:${ev.sessionId}`, dir: 'created', data: m.params.url, t: Date.now() });
    }
  });
  await cdp.send('Target.setDiscoverTargets', { discover: true });
  const { targetInfos } = await cdp.send('Target.getTargets');
  for (const info of targetInfos) await attach(info);

  const watchPage = (page) => {
    page.on('websocket', (ws) => {
      frames.push({ source: `page:${ws.url()}`, dir: 'created', data: ws.url(), t: Date.now() });
      ws.on('framereceived', (f) => frames.push({ source: 'page', dir: 'in', data: String(f.payload), t: Date.now() }));
      ws.on('framesent', (f) => frames.push({ source: 'page', dir: 'out', data: String(f.payload), t: Date.now() }));
    });
  };
  return {
    frames,
    workers,
    watchPage,
    received() {
      return frames.filter((f) => f.dir === 'in');
    },
    async stop() {
      for (const w of workers) {
        await cdp.send('Target.detachFromTarget', { sessionId: w.sessionId }).catch(() => {});
      }
      await cdp.detach().catch(() => {});
    },
  };
}

// The JSON API through a page's context (its session cookie).
export async function apiGet(page, p) {
  const r = await page.request.get(p, { headers: { 'X-Requested-With': 'x' } });
  const body = await r.json().catch(() => null);
  assert.equal(r.status(), 200, `GET ${p}: ${r.status()} ${JSON.stringify(body)}`);
  return body;
}

export async function apiPut(page, p, data) {
  const r = await page.request.put(p, { data, headers: { 'X-Requested-With': 'x' } });
  const body = await r.json().catch(() => null);
  assert.equal(r.status(), 200, `PUT ${p}: ${r.status()} ${JSON.stringify(body)}`);
  return body;
}

export async function serverMember(page, userId) {
  const p = await apiGet(page, '/api/presence');
  return p.members.find((m) => m.user === userId) || null;
}

// Moves the mouse in page every `every` ms (small wiggles) until stopped.
export function keepActive(page, every = 600) {
  let i = 0;
  let stopped = false;
  const tick = async () => {
    if (stopped || page.isClosed()) return;
    i++;
    await page.mouse.move(200 + (i % 2) * 40, 300 + (i % 3) * 20).catch(() => {});
  };
  const timer = setInterval(tick, every);
  tick();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

// Text of the page: what a person reads (innerText), plus the raw text
// content (hidden elements too) and the title.
export async function pageText(page) {
  return page.evaluate(() => `${document.body.innerText}\n${document.documentElement.textContent}\n${document.title}`);
}

// The parts every page but /login has: #logout, #conn-state with a known
// data-state.
export async function assertChrome(page, where = page.url()) {
  assert.equal(await page.locator('#logout').count(), 1, `${where}: one #logout`);
  const st = await connState(page);
  assert.ok(['connecting', 'connected', 'offline'].includes(st), `${where}: #conn-state data-state is ${st}`);
}

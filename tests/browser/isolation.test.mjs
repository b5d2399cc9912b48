// Organizations are isolated: a person of another organization, signed in at
// the same time, never appears on any page of A, in A's API answers or in
// the WebSocket frames A's browser receives (observed in the SharedWorker
// through CDP).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server, Person, launchBrowser, goto, waitForStatus, waitReady, apiGet, withDiagnostics,
  watchFrames, pageText, sleep, waitUntil, connState, assertChrome,
} from './lib.mjs';

const OUTSIDER = { org: 'other', id: 'olga', email: 'olga@other.example', name: 'Olga Outsider' };

describe('organization isolation', () => {
  let server;
  let browser;
  let browserA; // A's own browser, so every SharedWorker frame seen there is A's
  let watcher;
  const people = [];
  const person = async (id, opts = {}, b = browser) => {
    const p = new Person(b, server, id, opts);
    people.push(p);
    return p.open();
  };

  before(async () => {
    server = new Server();
    server.seedDemo();
    server.addOrg(OUTSIDER.org);
    server.addUser(OUTSIDER);
    server.addChannel({ org: OUTSIDER.org, name: 'outsiders-only', members: [OUTSIDER.id] });
    await server.start();
    browser = await launchBrowser();
    browserA = await launchBrowser();
  });

  after(async () => {
    if (watcher) await watcher.stop();
    for (const p of people) await p.close();
    if (browser) await browser.close();
    if (browserA) await browserA.close();
    if (server) await server.cleanup();
  });

  async function assertNoOutsider(page, where) {
    const els = await page.$$(`[data-user-id="${OUTSIDER.id}"]`);
    assert.equal(els.length, 0, `${where}: element with data-user-id=${OUTSIDER.id}`);
    const text = await pageText(page);
    assert.ok(!text.includes(OUTSIDER.name), `${where}: page text contains "${OUTSIDER.name}"`);
    assert.ok(!text.includes('Olga'), `${where}: page text contains "Olga"`);
    assert.ok(!text.includes(OUTSIDER.email), `${where}: page text contains the outsider's email`);
    assert.ok(!text.includes('outsiders-only'), `${where}: page text names the other org's channel`);
    const html = await page.content();
    assert.ok(!html.includes(OUTSIDER.name), `${where}: HTML contains "${OUTSIDER.name}"`);
  }

  test("a person of another organization never appears in A's pages, API answers or WebSocket frames",
    { timeout: 120_000 },
    withDiagnostics(() => server, () => people, async (t) => {
      const A = await person('ann', {}, browserA);
      const pa = await A.login();
      await goto(pa, '/members');

      // The outsider signs in (third context) and changes status a few times.
      const O = await person(OUTSIDER.id, { mail: OUTSIDER.email });
      const po = await O.login();
      await po.selectOption('#status-picker', 'BUSY');
      await sleep(300);
      await po.selectOption('#status-picker', 'AWAY');
      await sleep(300);
      await po.selectOption('#status-picker', 'ONLINE');

      // Positive control: a colleague of A's organization does the same.
      const B = await person('bob');
      const pb = await B.login();
      await pb.selectOption('#status-picker', 'BUSY');
      await waitForStatus(pa, 'bob', 'BUSY', 5000);
      await assertNoOutsider(pa, '/members');

      // The outsider sees their own organization only, the mirror check.
      await goto(po, '/members');
      assert.equal((await po.$$('[data-user-id="ann"]')).length, 0, 'outsider /members shows ann');
      assert.equal((await po.$$('[data-user-id="bob"]')).length, 0, 'outsider /members shows bob');
      assert.ok((await po.$$(`[data-user-id="${OUTSIDER.id}"]`)).length >= 1, 'outsider sees themself on /members');

      // Every page of A.
      const { channels } = await apiGet(pa, '/api/channels');
      const { projects } = await apiGet(pa, '/api/projects');
      assert.ok(!channels.some((c) => c.name === 'outsiders-only'), 'GET /api/channels lists the other org channel');
      const paths = ['/', '/members', '/channels', '/users/bob', '/users/ann'];
      for (const c of channels) paths.push(`/channels/${c.id}`);
      for (const p of projects) paths.push(`/projects/${p.id}`);
      for (const p of paths) {
        await goto(pa, p);
        await assertChrome(pa, p);
        await assertNoOutsider(pa, p);
      }
      // The outsider's own profile URL and their channel's URL, from A.
      const otherChannels = await apiGet(po, '/api/channels');
      const outsiders = otherChannels.channels.find((c) => c.name === 'outsiders-only');
      assert.ok(outsiders, 'the outsider sees their own channel');
      for (const p of [`/users/${OUTSIDER.id}`, `/channels/${outsiders.id}`]) {
        await pa.goto(p);
        await waitReady(pa, 3000).catch(() => {}); // an error page need not be "ready"
        await assertNoOutsider(pa, p);
      }

      // A's API answers.
      const presence = await apiGet(pa, '/api/presence');
      assert.equal(presence.org, 'demo');
      assert.ok(!presence.members.some((m) => m.user === OUTSIDER.id), '/api/presence lists the outsider');
      const r = await pa.request.get(`/api/users/${OUTSIDER.id}`);
      assert.equal(r.status(), 404, `GET /api/users/${OUTSIDER.id} from A`);
      const rc = await pa.request.get(`/api/channels/${outsiders.id}`);
      assert.equal(rc.status(), 404, `GET /api/channels/${outsiders.id} (other org) from A`);

      // A's WebSocket frames: watch A's SharedWorker from here on (no more
      // navigation in A's browser while watching), restart the server so
      // that the socket reconnects and hello + snapshot are seen too, then
      // both organizations change statuses.
      await goto(pa, '/members');
      await goto(po, '/');
      await goto(pb, '/');
      watcher = await watchFrames(browserA);
      assert.ok(watcher.workers.length >= 1, "A's SharedWorker found through CDP");
      await server.restart();
      await waitUntil(async () => (await connState(pa)) === 'connected', 30_000, "A's page reconnected");
      await waitUntil(async () => (await connState(po)) === 'connected', 30_000, "outsider's page reconnected");
      await waitUntil(async () => (await connState(pb)) === 'connected', 30_000, "B's page reconnected");
      await po.selectOption('#status-picker', 'BUSY');
      await pb.selectOption('#status-picker', 'AWAY');
      await waitForStatus(pa, 'bob', 'AWAY', 5000);
      await po.selectOption('#status-picker', 'ONLINE');
      await pb.selectOption('#status-picker', 'BUSY');
      await waitForStatus(pa, 'bob', 'BUSY', 5000);
      await sleep(500);
      await assertNoOutsider(pa, '/members after the restart');
      await watcher.stop();

      const received = watcher.received();
      t.diagnostic(`frames received by A's SharedWorker: ${received.length}`);
      const parsed = received.map((f) => {
        try {
          return JSON.parse(f.data);
        } catch {
          return { unparsed: f.data };
        }
      });
      const types = parsed.map((m) => m.type);
      assert.ok(types.includes('hello') && types.includes('snapshot'),
        `A's frames after the reconnect include hello and snapshot: ${types}`);
      assert.ok(parsed.some((m) => m.type === 'presence' && m.user === 'bob' && m.status === 'AWAY'),
        "positive control: A's frames carry bob's AWAY event");
      const leaks = received.filter((f) => /olga|outsider/i.test(f.data) || f.data.includes(`"org":"${OUTSIDER.org}"`));
      assert.deepEqual(leaks.map((f) => f.data), [], "A's frames mention the outsider");
      for (const msg of parsed) {
        if (msg.type === 'hello') assert.equal(msg.org, 'demo', 'hello.org of A');
        if (msg.type === 'snapshot') {
          assert.ok(!msg.members.some((m) => m.user === OUTSIDER.id), 'snapshot lists the outsider');
          assert.ok(msg.members.some((m) => m.user === 'bob'), 'snapshot lists bob');
        }
        if (msg.type === 'presence') assert.notEqual(msg.user, OUTSIDER.id, 'presence event of the outsider');
      }
      assert.deepEqual(A.dialogs, []);
    }));
});

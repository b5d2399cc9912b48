// Screenshots of the member directory and of a channel page with every
// status on screen (ONLINE, AWAY, BUSY, OFFLINE), written to
// docs/screenshots/members.png and docs/screenshots/channel.png (overwritten
// on each run). The statuses are checked before each picture is taken.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  Server, Person, launchBrowser, goto, waitForStatus, apiGet, withDiagnostics, personInfo, REPO,
} from './lib.mjs';

const OUT = path.join(REPO, 'docs', 'screenshots');

// Who shows what (ann is the viewer, signed in; nobody else ever signed in).
const WANT = {
  bob: 'ONLINE',
  erin: 'ONLINE',
  chloe: 'BUSY',
  hiro: 'BUSY',
  dev: 'AWAY',
  grace: 'AWAY',
  farid: 'OFFLINE', // signed in and out: "Last seen ..."
};

describe('screenshots', () => {
  let server;
  let browser;
  const people = [];

  before(async () => {
    // Long idle thresholds: the statuses must hold still for the pictures.
    server = new Server({ PRESENCED_AWAY_AFTER: '300s', PRESENCED_OFFLINE_AFTER: '1800s' });
    server.seedDemo();
    await server.start();
    browser = await launchBrowser();
  });

  after(async () => {
    for (const p of people) await p.close();
    if (browser) await browser.close();
    if (server) await server.cleanup();
  });

  test('member directory and channel page with mixed statuses -> docs/screenshots/{members,channel}.png',
    { timeout: 90_000 },
    withDiagnostics(() => server, () => people, async (t) => {
      // Colleagues: an API login each and a WebSocket (token) held open by a
      // blank page of a "bots" context; manual statuses through the API.
      const bots = new Person(browser, server, 'bots');
      people.push(bots);
      await bots.open();
      const botPage = await bots.newPage();
      for (const [id, status] of Object.entries(WANT)) {
        const api = await server.apiLogin(id);
        if (status === 'OFFLINE') {
          await api.logout();
          continue;
        }
        await botPage.evaluate(({ url, id }) => new Promise((resolve, reject) => {
          const ws = new WebSocket(url);
          (window.__ws = window.__ws || {})[id] = ws;
          ws.onmessage = (e) => {
            if (JSON.parse(e.data).type === 'snapshot') resolve();
          };
          ws.onerror = () => reject(new Error(`WebSocket of ${id} failed`));
        }), { url: `ws://127.0.0.1:${server.port}/ws/presence/?token=${api.token}`, id });
        if (status !== 'ONLINE') await api.setStatus(status);
      }

      const A = new Person(browser, server, 'ann');
      people.push(A);
      await A.open();
      const pa = await A.login();

      await goto(pa, '/members');
      for (const [id, status] of Object.entries(WANT)) {
        await waitForStatus(pa, id, status, 5000);
      }
      const lastSeen = async (id) => (await personInfo(pa, id))[0]?.lastSeen;
      assert.equal(await lastSeen('bob'), 'Online now', 'bob .last-seen');
      assert.match((await lastSeen('farid')) ?? '', /^Last seen/, 'farid .last-seen');
      // jonas never signed in.
      assert.equal(await lastSeen('jonas'), 'Never seen', 'jonas .last-seen');
      await waitForStatus(pa, 'jonas', 'OFFLINE', 1000);
      fs.mkdirSync(OUT, { recursive: true });
      const members = path.join(OUT, 'members.png');
      await pa.screenshot({ path: members, animations: 'disabled' });

      const { channels } = await apiGet(pa, '/api/channels');
      const general = channels.find((c) => c.name === 'general');
      await goto(pa, `/channels/${general.id}`);
      for (const [id, status] of Object.entries(WANT)) {
        await waitForStatus(pa, id, status, 5000);
      }
      const order = await pa.$$eval('#members [data-user-id]', (els) =>
        els.map((e) => [e.getAttribute('data-user-id'), e.getAttribute('data-status')]));
      assert.equal(order.length, 12, `#members of general lists its 12 members: ${JSON.stringify(order)}`);
      const lastOnline = order.map((o) => o[1]).lastIndexOf('ONLINE');
      const firstOffline = order.map((o) => o[1]).indexOf('OFFLINE');
      assert.ok(lastOnline < firstOffline, `#members lists online people first: ${JSON.stringify(order)}`);
      const channel = path.join(OUT, 'channel.png');
      await pa.screenshot({ path: channel, animations: 'disabled' });

      // For the record (the contract does not say whether BUSY/AWAY count).
      await goto(pa, '/');
      t.diagnostic(`dashboard #online-count with 2 ONLINE, 2 BUSY, 2 AWAY others: ${
        (await pa.textContent('#online-count'))?.trim()}`);

      for (const f of [members, channel]) {
        const st = fs.statSync(f);
        assert.ok(st.size > 5000, `${f} is a real picture (${st.size} bytes)`);
        t.diagnostic(`wrote ${f} (${st.size} bytes)`);
      }
    }));
});

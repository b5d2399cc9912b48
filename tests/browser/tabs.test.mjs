// Many tabs of one person share one WebSocket (SharedWorker): the server sees
// one connection; activity in any tab keeps the person ONLINE; closing every
// tab makes them OFFLINE after the grace period; navigating from page to page
// in the only tab does not flicker them OFFLINE.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  demoSuite, goto, waitForStatus, waitReady, recordStatuses, readStatusLog,
  serverMember, withDiagnostics, connState, sleep, waitUntil, keepActive,
} from './lib.mjs';

const GRACE = 1000;

describe('tabs and navigation', () => {
  const suite = demoSuite();
  const { person } = suite;

  test('three tabs of B use one WebSocket; activity in tab 3 keeps B ONLINE; closing all makes B OFFLINE',
    { timeout: 90_000 },
    suite.run(async () => {
      const A = await person('ann');
      const pa = await A.login();
      await goto(pa, '/members');

      const B = await person('bob');
      const tab1 = await B.login();
      const tab2 = await B.newPage();
      await goto(tab2, '/members');
      const tab3 = await B.newPage();
      await goto(tab3, '/channels');
      for (const [i, tab] of [tab1, tab2, tab3].entries()) {
        assert.equal(await connState(tab), 'connected', `tab ${i + 1} #conn-state`);
      }

      // One WebSocket for the three tabs, as the server counts them.
      const first = await waitUntil(async () => {
        const m = await serverMember(pa, 'bob');
        return m && m.connections >= 1 ? m : null;
      }, 5000, 'bob connected');
      const counts = [first.connections];
      for (let i = 0; i < 5; i++) {
        await sleep(300);
        counts.push((await serverMember(pa, 'bob')).connections);
      }
      assert.deepEqual(counts, counts.map(() => 1),
        `GET /api/presence connections of bob with three tabs open (sampled over 1.5 s): ${counts}`);

      // Tabs 1 and 2 stay idle; tab 3 gets mouse moves for 8 s (longer than
      // away_after and offline_after): B must stay ONLINE for A throughout.
      await waitForStatus(pa, 'bob', 'ONLINE', 5000);
      await recordStatuses(pa, ['bob']);
      const active = keepActive(tab3, 500);
      try {
        await sleep(8000);
      } finally {
        active.stop();
      }
      const log = await readStatusLog(pa, 'bob');
      const keys = [...new Set(log.map((e) => e.key))];
      assert.deepEqual(keys, ['ONLINE'],
        `statuses A showed for bob while tab 3 was active and tabs 1, 2 idle: ${JSON.stringify(log)}`);
      const m = await serverMember(pa, 'bob');
      assert.equal(m.status, 'ONLINE', 'server: bob ONLINE');
      assert.equal(m.connections, 1, 'still one WebSocket');

      // Close every tab: OFFLINE after the grace period.
      await tab1.close();
      await tab2.close();
      await sleep(300);
      assert.equal((await serverMember(pa, 'bob')).connections, 1, 'one tab left: its connection stays');
      await assertStillOnline(pa);
      await tab3.close();
      await waitForStatus(pa, 'bob', 'OFFLINE', GRACE + 5000);
      assert.equal((await serverMember(pa, 'bob')).connections, 0, 'no connection once every tab closed');
      assert.deepEqual(B.pageErrors, [], 'no uncaught page errors in B');
    }));

  test('navigating members -> channels -> dashboard in the only tab does not flicker B OFFLINE for A',
    { timeout: 90_000 },
    suite.run(async () => {
      const A = await person('ann');
      const pa = await A.login();
      await goto(pa, '/members');
      await recordStatuses(pa, ['chloe']);

      const B = await person('chloe');
      const pb = await B.login();
      await waitForStatus(pa, 'chloe', 'ONLINE', 5000);
      const start = Date.now();

      for (const p of ['/members', '/channels', '/', '/members', '/channels', '/']) {
        await pb.goto(p);
        await waitReady(pb);
        await pb.mouse.move(100 + p.length * 10, 200);
      }
      assert.equal(B.pages.filter((p) => !p.isClosed()).length, 1, 'B kept one tab');
      await sleep(GRACE + 1000); // past the grace period of any closed connection

      const log = (await readStatusLog(pa, 'chloe')).filter((e) => e.t >= start);
      const offline = log.filter((e) => e.key === 'NONE' || e.statuses.includes('OFFLINE'));
      assert.deepEqual(offline, [],
        `A showed chloe OFFLINE (or not at all) during B's navigation: ${JSON.stringify(log)}`);
      await waitForStatus(pa, 'chloe', 'ONLINE', 1000);
      const m = await serverMember(pa, 'chloe');
      assert.equal(m.status, 'ONLINE', 'server: chloe ONLINE after navigation');
      assert.equal(m.connections, 1, 'one WebSocket after navigation');
      assert.deepEqual(B.pageErrors, [], 'no uncaught page errors in B');
    }));

  async function assertStillOnline(pa) {
    const shown = await pa.$eval('[data-user-id="bob"]', (e) => e.getAttribute('data-status'));
    assert.equal(shown, 'ONLINE', 'bob still ONLINE with one tab open');
  }
});

// Network drop: the server stops (SIGTERM) and comes back on the same port
// and database. The open page must notice (#conn-state leaves "connected"),
// reconnect by itself (no reload) and show current statuses again: a person
// who left while the server was down is OFFLINE, and a status set after the
// restart arrives live.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  demoSuite, goto, waitForStatus, recordConnState, readConnLog,
  serverMember, withDiagnostics, connState, sleep, waitUntil, keepActive, recordStatuses, readStatusLog,
} from './lib.mjs';

describe('reconnect after a server restart', () => {
  // A short restore window: bob, who left while the server was down, goes
  // OFFLINE (reason restart) right after the start, before the page's
  // reconnect, so the page must take it from the new snapshot.
  const suite = demoSuite({ PRESENCED_RESTART_GRACE: '200ms' });
  const { person } = suite;

  test('the page reconnects by itself after SIGTERM + restart and shows current statuses without a reload',
    { timeout: 120_000 },
    suite.run(async () => {
      const A = await person('ann');
      const pa = await A.login();
      await goto(pa, '/members');

      const B = await person('bob');
      const pb = await B.login();
      const bActive = keepActive(pb);
      const C = await person('chloe');
      const pc = await C.login();
      await waitForStatus(pa, 'bob', 'ONLINE', 5000);
      await waitForStatus(pa, 'chloe', 'ONLINE', 5000);

      let navigations = 0;
      pa.on('framenavigated', (f) => {
        if (f === pa.mainFrame()) navigations++;
      });
      await pa.evaluate(() => {
        window.__noReload = 'still the same document';
      });
      await recordConnState(pa);
      await recordStatuses(pa, ['bob', 'chloe']);
      assert.equal(await connState(pa), 'connected');

      // Network drop.
      const stopped = await suite.server.stop();
      assert.ok(stopped, 'server was running');
      await waitUntil(async () => (await connState(pa)) !== 'connected', 10_000,
        "A's #conn-state to leave 'connected' once the server is gone");
      const down = await connState(pa);
      assert.ok(['offline', 'connecting'].includes(down), `#conn-state while down: ${down}`);

      // bob leaves while the server is down.
      bActive.stop();
      await B.close();
      await sleep(1500);
      await suite.server.start();

      await waitUntil(async () => (await connState(pa)) === 'connected', 30_000,
        "A's #conn-state back to 'connected' after the restart");
      await waitForStatus(pa, 'bob', 'OFFLINE', 10_000);
      assert.equal((await serverMember(pa, 'bob')).status, 'OFFLINE', 'server: bob OFFLINE after restart');

      // chloe's page reconnected too; her new status reaches A live.
      await waitUntil(async () => (await connState(pc)) === 'connected', 30_000,
        "C's #conn-state back to 'connected'");
      await pc.selectOption('#status-picker', 'BUSY');
      await waitForStatus(pa, 'chloe', 'BUSY', 5000);

      const conn = (await readConnLog(pa)).map((e) => e.state);
      assert.equal(conn[0], 'connected', `conn-state log: ${conn}`);
      assert.ok(conn.some((s) => s === 'offline' || s === 'connecting'), `conn-state log: ${conn}`);
      assert.equal(conn[conn.length - 1], 'connected', `conn-state log: ${conn}`);
      assert.ok(conn.every((s) => ['connected', 'connecting', 'offline'].includes(s)),
        `only connecting|connected|offline in #conn-state data-state: ${conn}`);
      assert.equal(await pa.evaluate(() => window.__noReload), 'still the same document', 'page was not reloaded');
      assert.equal(navigations, 0, 'page did not navigate');
      const bobLog = (await readStatusLog(pa, 'bob')).map((e) => e.key);
      assert.equal(bobLog[bobLog.length - 1], 'OFFLINE', `bob statuses shown: ${bobLog}`);
      assert.equal((await serverMember(pa, 'ann')).connections, 1, 'A has one WebSocket again');
    }));
});

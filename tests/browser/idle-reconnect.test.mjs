// An idle person does not flap when the connection comes back: the page (its
// SharedWorker) states the idle detector's state in the upgrade URL
// (auto=AWAY) on every connect and reconnect, so the server opens the new
// connection AWAY and announces nothing. Before, each reconnect of an idle
// person gave the organization "ONLINE (connect)" then "AWAY (idle)".
// B goes idle; then B's socket is dropped (the page reconnects), then the
// server restarts on the same database. An observer A records every presence
// event about B: there must be none, and the server's log (log_level debug
// lists every event it announces) must show none either.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  demoSuite, goto, waitForStatus, recordStatuses, readStatusLog, recordPresenceEvents,
  readPresenceEvents, serverMember, keepActive, connState, waitUntil, sleep, PASSWORD,
} from './lib.mjs';

const AWAY_AFTER = 2000;
// After a reconnect, the old client reported AWAY right after hello: a few
// milliseconds. Past grace (1 s) and a heartbeat or two, nothing is pending.
const SETTLE_MS = 4000;

describe('an idle person reconnects without a flap', () => {
  // offline_after far away: B stays AWAY for the whole test. A long restore
  // window: B, AWAY in the database, is restored AWAY and reconnects in it.
  const suite = demoSuite({
    PRESENCED_AWAY_AFTER: `${AWAY_AFTER}ms`,
    PRESENCED_OFFLINE_AFTER: '10m',
    PRESENCED_RESTART_GRACE: '60s',
  });
  const { person } = suite;

  test('idle B: a dropped socket and a server restart give A no event about B',
    { timeout: 150_000 },
    suite.run(async () => {
      const A = await person('ann');
      const pa = await A.login();
      await goto(pa, '/members');
      const aActive = keepActive(pa);
      try {
        await idleB(A, pa);
      } finally {
        aActive.stop();
      }
    }));

  async function idleB(A, pa) {
    const server = suite.server;
    const B = await person('dev');
    const pb = await B.newPage();
    await pb.goto('/login');
    await pb.fill('form#login-form input[name=email]', 'dev@demo.example');
    await pb.fill('form#login-form input[name=password]', PASSWORD);
    await Promise.all([
      pb.waitForURL((u) => !u.pathname.startsWith('/login')),
      pb.click('form#login-form button[type=submit]'),
    ]);
    // From here on B touches nothing.
    await waitForStatus(pa, 'dev', 'ONLINE', 5000);
    await waitForStatus(pa, 'dev', 'AWAY', AWAY_AFTER + 8000);
    assert.equal((await serverMember(pa, 'dev')).status, 'AWAY', 'server: dev AWAY');
    await pb.evaluate(() => {
      window.__hellos = 0;
      window.presence.on('hello', () => window.__hellos++);
    });
    await recordPresenceEvents(pa);
    await recordStatuses(pa, ['dev']);

    const check = async (what, mark) => {
      const events = await readPresenceEvents(pa, 'dev');
      const flaps = events.filter((e) => e.kind === 'presence' || e.status !== 'AWAY');
      assert.deepEqual(flaps, [], `${what}: A got no event about dev, and no snapshot other than AWAY`);
      const said = server.announced(server.logSince(mark), 'dev');
      assert.deepEqual(said, [], `${what}: the server announced nothing about dev`);
      const shown = (await readStatusLog(pa, 'dev')).map((e) => e.key);
      assert.deepEqual([...new Set(shown)], ['AWAY'], `${what}: A showed dev AWAY throughout`);
      const m = await serverMember(pa, 'dev');
      assert.deepEqual([m.status, m.connections], ['AWAY', 1], `${what}: server: dev AWAY on one connection`);
    };

    // 1. B's socket drops; the page connects again at once.
    let mark = server.logMark();
    await pb.evaluate(() => window.presence.reconnect());
    await waitUntil(() => pb.evaluate(() => window.__hellos >= 1), 15_000, "B's new connection (hello)");
    await sleep(SETTLE_MS);
    await check('after a dropped socket', mark);

    // 2. The server restarts on the same database; both pages reconnect.
    mark = server.logMark();
    const hellos = await pb.evaluate(() => window.__hellos);
    await server.stop();
    await waitUntil(async () => (await connState(pb)) !== 'connected', 10_000, "B's page to see the drop");
    await sleep(500);
    await server.start();
    await waitUntil(async () => (await connState(pa)) === 'connected', 30_000, "A's page back to 'connected'");
    await waitUntil(() => pb.evaluate((n) => window.__hellos > n, hellos), 30_000,
      "B's page connected again (hello)");
    await sleep(SETTLE_MS);
    await check('after a server restart', mark);

    assert.deepEqual(B.pageErrors, [], 'no uncaught page errors in B');
    assert.deepEqual(A.pageErrors, [], 'no uncaught page errors in A');
  }
});

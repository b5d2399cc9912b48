// Idle detection: B stops touching the page; A sees B AWAY after away_after
// (3 s) and OFFLINE after offline_after (6 s); B moves the mouse and A sees
// B ONLINE again.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  demoSuite, goto, waitForStatus, recordStatuses, readStatusLog,
  serverMember, withDiagnostics, connState, sleep,
} from './lib.mjs';

const AWAY_AFTER = 3000;
const OFFLINE_AFTER = 6000;
const SLACK = 1000; // clock granularity of an idle detector that checks every second

describe('idle detection', () => {
  const suite = demoSuite();
  const { person } = suite;

  test('idle B goes AWAY at 3 s and OFFLINE at 6 s for A; moving the mouse brings B back ONLINE',
    { timeout: 90_000 },
    suite.run(async () => {
      const A = await person('ann');
      const pa = await A.login();
      await goto(pa, '/members');
      await recordStatuses(pa, ['dev']);

      const B = await person('dev');
      const pb = await B.newPage();
      await pb.goto('/login');
      await pb.fill('form#login-form input[name=email]', 'dev@demo.example');
      await pb.fill('form#login-form input[name=password]', 'demo');
      await Promise.all([
        pb.waitForURL((u) => !u.pathname.startsWith('/login')),
        pb.click('form#login-form button[type=submit]'),
      ]);
      // B's last input is the click on the submit button: from here on B
      // does not touch anything.
      const lastInput = Date.now();
      await waitForStatus(pa, 'dev', 'ONLINE', 5000);

      await waitForStatus(pa, 'dev', 'AWAY', AWAY_AFTER + 6000);
      assert.equal((await serverMember(pa, 'dev')).status, 'AWAY', 'server: dev AWAY');
      await waitForStatus(pa, 'dev', 'OFFLINE', OFFLINE_AFTER + 6000);
      const srv = await serverMember(pa, 'dev');
      assert.equal(srv.status, 'OFFLINE', 'server: dev OFFLINE (idle)');
      assert.equal(srv.connections, 1, 'idle dev keeps its one WebSocket open');
      assert.equal(await connState(pb), 'connected', 'B #conn-state while idle');

      const log = await readStatusLog(pa, 'dev');
      const seq = log.map((e) => e.key).filter((k, i, a) => i === 0 || a[i - 1] !== k);
      assert.deepEqual(seq.slice(-3), ['ONLINE', 'AWAY', 'OFFLINE'],
        `A saw dev go ONLINE -> AWAY -> OFFLINE (all: ${JSON.stringify(seq)})`);
      const when = (s) => log.find((e) => e.key === s && e.t >= lastInput - 100)?.t;
      const away = when('AWAY') - lastInput;
      const offline = when('OFFLINE') - lastInput;
      assert.ok(away >= AWAY_AFTER - SLACK,
        `dev shown AWAY only ${away} ms after the last input (away_after is ${AWAY_AFTER} ms)`);
      assert.ok(offline >= OFFLINE_AFTER - SLACK,
        `dev shown OFFLINE only ${offline} ms after the last input (offline_after is ${OFFLINE_AFTER} ms)`);

      // B comes back: mouse movement in B's page.
      await pb.mouse.move(300, 300);
      await pb.mouse.move(320, 340, { steps: 5 });
      await waitForStatus(pa, 'dev', 'ONLINE', 5000);
      assert.equal((await serverMember(pa, 'dev')).status, 'ONLINE', 'server: dev ONLINE again');

      // and a key press after going idle again counts too.
      await waitForStatus(pa, 'dev', 'AWAY', AWAY_AFTER + 6000);
      await pb.keyboard.press('Shift');
      await waitForStatus(pa, 'dev', 'ONLINE', 5000);
      await sleep(200);
      assert.deepEqual(B.pageErrors, [], 'no uncaught page errors in B');
    }));
});

// Two people in separate browser contexts see each other's status live:
// sign-in (green within 2 s), Busy (red on the member directory, the channel
// page, the channel list and the profile), "appear offline", sign-out (grey).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  demoSuite, goto, waitForStatus, assertStatus, personInfo,
  apiGet, serverMember, keepActive, withDiagnostics, connState, waitUntil, assertChrome,
} from './lib.mjs';

describe('presence between two people', () => {
  const suite = demoSuite();
  const { person } = suite;

  test('A sees B turn ONLINE within 2 s, BUSY on members/channel/profile, OFFLINE after sign-out',
    { timeout: 90_000 },
    suite.run(async () => {
      const A = await person('ann');
      // A wrong password first: the error shows in #login-error, no way in.
      const pa = await A.newPage();
      await pa.goto('/login');
      assert.equal(await pa.locator('#logout').count(), 0, '/login has no #logout');
      await pa.fill('form#login-form input[name=email]', 'ann@demo.example');
      await pa.fill('form#login-form input[name=password]', 'not-the-password');
      await pa.click('form#login-form button[type=submit]');
      await waitUntil(async () => ((await pa.textContent('#login-error')) || '').trim().length > 0, 5000,
        '#login-error to say why');
      assert.equal(new URL(pa.url()).pathname, '/login', 'still on /login after a wrong password');
      await A.login(pa);
      assert.equal(new URL(pa.url()).pathname, '/', 'login lands on the dashboard');
      assert.equal(await connState(pa), 'connected', 'A #conn-state after login');
      await assertChrome(pa, '/');
      await waitUntil(async () => (await pa.textContent('#online-count'))?.trim() === '0', 5000,
        '#online-count 0 before anybody else signs in');

      await goto(pa, '/members');
      await waitForStatus(pa, 'bob', 'OFFLINE', 5000);
      const [never] = await personInfo(pa, 'bob');
      assert.equal(never.lastSeen, 'Never seen', 'bob has never been seen: .last-seen');
      assert.equal(never.name.trim(), 'Bob Martin');

      // B signs in through the form; A must see the green dot within 2 s.
      const B = await person('bob');
      const pb = await B.newPage();
      await pb.goto('/login');
      await pb.fill('form#login-form input[name=email]', 'bob@demo.example');
      await pb.fill('form#login-form input[name=password]', 'demo');
      const submitted = Date.now();
      const navigated = pb.waitForURL((u) => !u.pathname.startsWith('/login'));
      await pb.click('form#login-form button[type=submit]');
      await waitForStatus(pa, 'bob', 'ONLINE', Math.max(500, 2000 - (Date.now() - submitted)));
      await navigated;
      const active = keepActive(pb); // B stays active (away_after is 3 s)
      try {
        await assertStatus(pa, 'bob', 'ONLINE');
        const [on] = await personInfo(pa, 'bob');
        assert.equal(on.lastSeen, 'Online now', 'ONLINE person on /members: .last-seen');

        // #online-count on A's dashboard counts B.
        await goto(pa, '/');
        await waitUntil(async () => (await pa.textContent('#online-count'))?.trim() === '1', 5000,
          '#online-count 1 with bob online');

        // B picks Busy on the dashboard.
        await pb.waitForSelector('#status-picker');
        const opts = await pb.$$eval('#status-picker option', (os) => os.map((o) => o.value));
        assert.deepEqual([...opts].sort(), ['AWAY', 'BUSY', 'OFFLINE', 'ONLINE'], '#status-picker values');
        await pb.selectOption('#status-picker', 'BUSY');
        await waitUntil(async () => (await serverMember(pa, 'bob'))?.status === 'BUSY', 5000,
          'server: bob BUSY after picking Busy (GET /api/presence)');
        assert.equal(await pb.inputValue('#status-picker'), 'BUSY');

        // A sees red on the member directory (live), the channel page, the
        // channel list and the profile.
        await goto(pa, '/members');
        await waitForStatus(pa, 'bob', 'BUSY', 5000);
        const { channels } = await apiGet(pa, '/api/channels');
        const general = channels.find((c) => c.name === 'general');
        assert.ok(general, 'channel general exists');
        await goto(pa, `/channels/${general.id}`);
        assert.ok(await pa.$('#members [data-user-id="bob"]'), 'bob listed in #members of general');
        await waitForStatus(pa, 'bob', 'BUSY', 5000);
        await goto(pa, '/channels');
        assert.ok(await pa.$(`.channel[data-channel-id="${general.id}"] [data-user-id="bob"]`),
          'bob listed in .channel[data-channel-id=general] on /channels');
        await waitForStatus(pa, 'bob', 'BUSY', 5000);
        await goto(pa, '/users/bob');
        await waitForStatus(pa, 'bob', 'BUSY', 5000);
        const [profile] = await personInfo(pa, 'bob');
        assert.equal(profile.name.trim(), 'Bob Martin', 'profile shows the name');

        // "Appear offline": A sees grey while B stays connected; then Busy again.
        await pb.selectOption('#status-picker', 'OFFLINE');
        await waitForStatus(pa, 'bob', 'OFFLINE', 5000);
        // Others see nothing of him, not even a connection; his own view
        // has the truth: his WebSocket is still open.
        const hidden = await serverMember(pa, 'bob');
        assert.deepEqual([hidden.status, hidden.connections], ['OFFLINE', 0],
          'server, to A: bob appears OFFLINE and unconnected');
        const self = await apiGet(pb, '/api/me');
        assert.equal(self.connections, 1, 'server, to bob: his WebSocket is still open');
        assert.equal(await connState(pb), 'connected', 'B stays connected while appearing offline');
        await pb.selectOption('#status-picker', 'BUSY');
        await waitForStatus(pa, 'bob', 'BUSY', 5000);
      } finally {
        active.stop();
      }

      // B signs out; A (on the member directory) sees grey.
      await goto(pa, '/members');
      await waitForStatus(pa, 'bob', 'BUSY', 5000);
      await Promise.all([
        pb.waitForURL((u) => u.pathname.startsWith('/login')),
        pb.click('#logout'),
      ]);
      await waitForStatus(pa, 'bob', 'OFFLINE', 1000 + 5000); // grace + margin
      const [off] = await personInfo(pa, 'bob');
      assert.match(off.lastSeen ?? '', /^Last seen/, 'OFFLINE person seen before: .last-seen');
      const m = await serverMember(pa, 'bob');
      assert.equal(m.status, 'OFFLINE', 'server agrees bob is OFFLINE');
      assert.equal(m.connections, 0, 'bob has no connection after logout');

      await goto(pa, '/');
      await waitUntil(async () => (await pa.textContent('#online-count'))?.trim() === '0', 5000,
        '#online-count back to 0 after bob signed out');
      assert.deepEqual(A.pageErrors, [], 'no uncaught page errors in A');
      assert.deepEqual(B.pageErrors, [], 'no uncaught page errors in B');
    }));
});

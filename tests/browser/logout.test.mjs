// Log out, many times in a row: the server closes the page's WebSocket
// (1008) as it ends the session, often before the answer to POST
// /api/logout reaches the page. The page must not leave for /login on that
// close before its request is done: an aborted request leaves the cookie
// in the browser (the answer clears it). Half of the rounds hold the
// answer back in the browser for a while (DevTools Fetch, at the response
// stage: the server has answered and closed the socket), which makes the
// close come first every time.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { demoSuite, waitReady, loginForm, sleep, PASSWORD } from './lib.mjs';

const ROUNDS = 10;
const HOLD_MS = 1000;

describe('log out', () => {
  const suite = demoSuite();
  const { person } = suite;

  test(`signing out ${ROUNDS} times in a row: each logout request completes and ends the session`,
    { timeout: 240_000 },
    suite.run(async () => {
      const B = await person('bob');
      const page = await B.newPage();
      const cdp = await B.context.newCDPSession(page);
      let hold = false;
      cdp.on('Fetch.requestPaused', async (ev) => {
        if (hold) await sleep(HOLD_MS);
        await cdp.send('Fetch.continueRequest', { requestId: ev.requestId }).catch(() => {});
      });
      await cdp.send('Fetch.enable', { patterns: [{ urlPattern: '*/api/logout', requestStage: 'Response' }] });

      const failed = [];
      const answered = [];
      page.on('requestfailed', (r) => {
        if (r.url().includes('/api/logout')) failed.push(`${r.url()}: ${r.failure()?.errorText}`);
      });
      page.on('response', (r) => {
        if (r.url().includes('/api/logout')) answered.push(r.status());
      });

      for (let i = 0; i < ROUNDS; i++) {
        const slow = i % 2 === 1;
        hold = false;
        await loginForm(page, 'bob@demo.example', PASSWORD);
        await waitReady(page);
        await page.waitForFunction(() => document.querySelector('#conn-state')?.dataset.state === 'connected');
        const cookie = (await B.context.cookies()).find((c) => c.name === 'presenced_session');
        assert.ok(cookie, `round ${i}: signed in with a session cookie`);
        hold = slow;

        const before = answered.length;
        await Promise.all([
          page.waitForURL((u) => u.pathname === '/login', { timeout: 15_000 }),
          page.click('#logout'),
        ]);
        await page.waitForSelector('form#login-form');
        const where = `round ${i}${slow ? ` (answer held ${HOLD_MS} ms)` : ''}`;
        assert.deepEqual(failed, [], `${where}: the logout request was not aborted`);
        assert.deepEqual(answered.slice(before), [200], `${where}: POST /api/logout answered 200`);
        assert.equal(new URL(page.url()).search, '', `${where}: own sign-out goes to plain /login`);
        const left = (await B.context.cookies()).find((c) => c.name === 'presenced_session');
        assert.equal(left, undefined, `${where}: the answer cleared the session cookie`);
        const me = await fetch(`${suite.server.url}/api/me`, {
          headers: { Cookie: `${cookie.name}=${cookie.value}` },
        });
        assert.equal(me.status, 401, `${where}: the old session cookie is refused`);
      }
      await cdp.detach();
      assert.deepEqual(B.pageErrors, [], 'no uncaught page errors');
    }));
});

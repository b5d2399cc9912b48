// /login?next=: after signing in the page goes to `next` only when it is a
// page of the same origin (no open redirect), else to the dashboard; and a
// page that sends an anonymous visitor to /login (the server's 302, or the
// page itself when its session ends) carries next= so the link survives.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { demoSuite, waitReady, waitForStatus, PASSWORD } from './lib.mjs';

// Raw query strings for /login?next=...: each resolves to another origin
// (or to no origin at all) when taken as a URL.
const HOSTILE = [
  '/%09/evil.example',                            // "/<TAB>/evil.example"
  encodeURIComponent('//evil.example'),
  '//evil.example',
  encodeURIComponent('https://evil.example/'),
  encodeURIComponent('/\\evil.example'),
  '/\\evil.example',
  encodeURIComponent('javascript:alert(1)'),
  encodeURIComponent('/\t/evil'),                 // a tab
  encodeURIComponent('/\\t/evil'),                // backslash, t
  encodeURIComponent('/\n/evil.example'),
  encodeURIComponent('/.//evil.example'),         // path "//evil.example"
  encodeURIComponent('http://evil.example@127.0.0.1.evil.example/'),
];

// Signs in through the form on the page already at /login?...; resolves
// with the URL the browser lands on.
async function signIn(page, mail) {
  await page.waitForSelector('form#login-form');
  await page.fill('form#login-form input[name=email]', mail);
  await page.fill('form#login-form input[name=password]', PASSWORD);
  await Promise.all([
    page.waitForURL((u) => u.pathname !== '/login', { timeout: 15_000 }),
    page.click('form#login-form button[type=submit]'),
  ]);
  return new URL(page.url());
}

describe('next= after sign-in', () => {
  const suite = demoSuite();
  const { person } = suite;

  test('a hostile next= lands on the dashboard of the same origin; /members is kept',
    { timeout: 180_000 },
    suite.run(async () => {
      const A = await person('ann');
      const page = await A.newPage();
      // Any request off the server's origin is refused and remembered.
      const offsite = [];
      await A.context.route((u) => u.origin !== suite.server.url, (route) => {
        offsite.push(route.request().url());
        return route.fulfill({ status: 200, contentType: 'text/html', body: 'not presenced' });
      });

      for (const next of HOSTILE) {
        await page.goto(`/login?next=${next}`);
        const at = await signIn(page, 'ann@demo.example');
        assert.equal(at.origin, suite.server.url, `next=${next}: stayed on the origin (at ${at.href})`);
        assert.equal(at.pathname, '/', `next=${next}: went to the dashboard (at ${at.href})`);
        await waitReady(page);
      }
      assert.deepEqual(offsite, [], 'no request left the origin');
      assert.deepEqual(A.dialogs, [], 'no script ran from next=');

      await page.goto(`/login?next=${encodeURIComponent('/members')}`);
      const at = await signIn(page, 'ann@demo.example');
      assert.equal(at.pathname + at.search, '/members', `next=/members: at ${at.href}`);
      await waitReady(page);
      await waitForStatus(page, 'ann', 'ONLINE', 5000);
      assert.deepEqual(A.pageErrors, [], 'no uncaught page errors');
    }));

  test('an anonymous visit to /channels/ID?x=1 goes to /login?next=... and back after sign-in',
    { timeout: 90_000 },
    suite.run(async () => {
      const admin = await suite.server.apiLogin('chloe');
      const { channels } = await admin.get('/api/channels');
      assert.ok(channels.length > 0, 'chloe has a channel');
      const target = `/channels/${encodeURIComponent(channels[0].id)}?x=1&y=a%20b`;

      // The server's answer, seen by a plain HTTP client.
      const r = await fetch(suite.server.url + target, { redirect: 'manual' });
      assert.equal(r.status, 302);
      const loc = new URL(r.headers.get('location'), suite.server.url);
      assert.equal(loc.origin, suite.server.url, `Location ${r.headers.get('location')}`);
      assert.equal(loc.pathname, '/login');
      assert.equal(loc.searchParams.get('next'), target, `Location ${r.headers.get('location')}`);
      const root = await fetch(suite.server.url + '/', { redirect: 'manual' });
      assert.equal(root.headers.get('location'), '/login', 'the dashboard needs no next=');

      // The browser follows it and comes back after signing in.
      const C = await person('chloe');
      const page = await C.newPage();
      await page.goto(target);
      const login = new URL(page.url());
      assert.equal(login.pathname, '/login', `anonymous visitor sent to /login (at ${login.href})`);
      assert.equal(login.searchParams.get('next'), target);
      const at = await signIn(page, 'chloe@demo.example');
      assert.equal(at.pathname + at.search, target, `back at the channel after sign-in (at ${at.href})`);
      await waitReady(page);
      await waitForStatus(page, 'chloe', 'ONLINE', 5000);

      // The page's own trip to /login (its session ended elsewhere) also
      // carries next=, and signing in comes back.
      const cookie = (await C.context.cookies()).find((c) => c.name === 'presenced_session');
      assert.ok(cookie, 'signed in: a session cookie');
      const members = '/members?sort=name';
      await page.goto(members);
      await waitReady(page);
      const ended = await fetch(suite.server.url + '/api/logout', {
        method: 'POST',
        headers: { Cookie: `${cookie.name}=${cookie.value}`, 'X-Requested-With': 'x' },
      });
      assert.equal(ended.status, 200, 'the session ended through the API');
      await page.waitForURL((u) => u.pathname === '/login', { timeout: 15_000 });
      assert.equal(new URL(page.url()).searchParams.get('next'), members, `at ${page.url()}`);
      const back = await signIn(page, 'chloe@demo.example');
      assert.equal(back.pathname + back.search, members, `back after sign-in (at ${back.href})`);
      await waitReady(page);
      assert.deepEqual(C.pageErrors, [], 'no uncaught page errors');
    }));
});

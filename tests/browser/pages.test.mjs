// Page gaps a new user found (issue 13, part 4), in the demo organization:
// the 404 page (signed in: the header and navigation; anonymous: no
// private navigation, no redirect), the current section highlighted in the
// navigation, /projects with live dots and online counts, and "No one
// matches" on /members, whose filter folds names exactly as the server's
// search does.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  demoSuite, waitReady, waitForStatus, assertChrome, apiGet, goto, waitUntil,
} from './lib.mjs';

// The nav link marked current (text), and whether it looks different from
// the others (its computed background and underline).
async function navState(page) {
  return page.evaluate(() => {
    const links = [...document.querySelectorAll('.main-nav a')];
    const cur = links.filter((a) => a.getAttribute('aria-current') === 'page');
    const style = (a) => {
      const cs = getComputedStyle(a);
      return `${cs.backgroundColor}|${cs.color}|${cs.boxShadow}`;
    };
    const other = links.find((a) => !cur.includes(a));
    return {
      links: links.map((a) => a.textContent),
      current: cur.map((a) => a.textContent),
      distinct: cur.length === 1 && !!other && style(cur[0]) !== style(other),
    };
  });
}

// The ids of the cards /members shows now, in page order.
async function shownIds(page) {
  return page.evaluate(() => [...document.querySelectorAll('#directory > [data-user-id]')]
    .filter((el) => !el.hidden).map((el) => el.dataset.userId));
}

describe('pages and navigation', () => {
  const suite = demoSuite();
  const { person } = suite;

  test('the 404 page: signed in with the navigation, anonymous without', { timeout: 90_000 }, suite.run(async () => {
    const A = await person('ann');
    const pa = await A.login();
    for (const p of ['/nope', '/channels/a/b', '/members/x']) {
      const r = await pa.goto(p);
      assert.equal(r.status(), 404, `${p}: status`);
      await waitReady(pa);
      await assertChrome(pa, p);
      const nav = await navState(pa);
      assert.deepEqual(nav.links, ['Dashboard', 'Channels', 'Projects', 'Members'], `${p}: nav`);
      assert.deepEqual(nav.current, [], `${p}: no section is current`);
      assert.equal(await pa.textContent('h1'), 'Page not found', `${p}: heading`);
      assert.equal(await pa.textContent('#not-found-path'), p, `${p}: the path, as text`);
      assert.equal(await pa.getAttribute('#not-found-home', 'href'), '/');
      assert.equal(await pa.title(), 'Page not found · presenced');
    }
    // The link back goes to the dashboard.
    await Promise.all([pa.waitForURL((u) => u.pathname === '/'), pa.click('#not-found-home')]);
    await waitReady(pa);

    // A project that does not exist: the project page says so, under
    // Projects.
    await pa.goto('/projects/unknown-ish');
    await waitReady(pa);
    assert.match(await pa.textContent('main'), /Project not found/);
    assert.deepEqual((await navState(pa)).current, ['Projects']);

    // Anonymous: the same 404 page without the private navigation, and no
    // redirect to sign in (that would only lead back here).
    const ctx = await suite.browser.newContext({ baseURL: suite.server.url });
    try {
      const pn = await ctx.newPage();
      const r = await pn.goto('/nope');
      assert.equal(r.status(), 404);
      await waitReady(pn);
      assert.equal(new URL(pn.url()).pathname, '/nope', 'stays on /nope');
      assert.equal(await pn.locator('.main-nav').count(), 0, 'no navigation');
      assert.equal(await pn.locator('#logout').count(), 0, 'no log out');
      assert.equal(await pn.locator('#conn-state').count(), 0, 'no live connection');
      assert.equal(await pn.getAttribute('#sign-in', 'href'), '/login');
      assert.equal(await pn.textContent('#not-found-home'), 'Sign in');
      assert.equal(await pn.getAttribute('#not-found-home', 'href'), '/login');
      assert.equal(await pn.textContent('h1'), 'Page not found');
      // A real page still wants a session.
      await pn.goto('/projects');
      assert.equal(new URL(pn.url()).pathname, '/login');
      assert.equal(new URL(pn.url()).searchParams.get('next'), '/projects');
    } finally {
      await ctx.close();
    }
  }));

  test('the navigation marks the current section', { timeout: 90_000 }, suite.run(async () => {
    const A = await person('ann');
    const pa = await A.login();
    const { channels } = await apiGet(pa, '/api/channels');
    const { projects } = await apiGet(pa, '/api/projects');
    const want = [
      ['/', 'Dashboard'],
      ['/channels', 'Channels'],
      [`/channels/${channels[0].id}`, 'Channels'],
      ['/projects', 'Projects'],
      [`/projects/${projects[0].id}`, 'Projects'],
      ['/members', 'Members'],
      ['/users/bob', 'Members'],
      ['/users/ann', 'Members'],
    ];
    for (const [p, section] of want) {
      await goto(pa, p);
      const nav = await navState(pa);
      assert.deepEqual(nav.current, [section], `${p}: current section`);
      assert.ok(nav.distinct, `${p}: the current section looks different from the others`);
    }
    // Following the Projects link gets there.
    await goto(pa, '/');
    await Promise.all([pa.waitForURL((u) => u.pathname === '/projects'), pa.click('.main-nav a[href="/projects"]')]);
    await waitReady(pa);
    assert.deepEqual((await navState(pa)).current, ['Projects']);
  }));

  test('/projects lists every project with live dots and online counts', { timeout: 90_000 }, suite.run(async () => {
    const A = await person('ann');
    const pa = await A.login();
    await goto(pa, '/projects');
    const { projects } = await apiGet(pa, '/api/projects');
    assert.equal(projects.length, 2);
    const cards = await pa.evaluate(() => [...document.querySelectorAll('.project[data-project-id]')].map((el) => ({
      id: el.dataset.projectId,
      name: el.querySelector('.project-name').textContent,
      href: el.querySelector('.project-name a').getAttribute('href'),
      people: [...el.querySelectorAll('[data-user-id]')].map((p) => p.dataset.userId).sort(),
      dots: el.querySelectorAll('[data-user-id] .status-dot').length,
      summary: el.querySelector('.project-summary').textContent,
    })));
    assert.deepEqual(cards.map((c) => c.name).sort(), projects.map((p) => p.name).sort());
    for (const p of projects) {
      const c = cards.find((x) => x.id === p.id);
      assert.deepEqual(c.people, p.members.map((m) => m.user).sort(), `${p.name}: collaborators`);
      assert.equal(c.dots, p.members.length, `${p.name}: a dot each`);
      assert.equal(c.href, `/projects/${encodeURIComponent(p.id)}`);
    }
    const launch = projects.find((p) => p.name === 'Spring launch');
    const summary = () => pa.textContent(`.project[data-project-id="${launch.id}"] .project-summary`);
    const online = () => pa.evaluate((id) => [...document.querySelectorAll(`.project[data-project-id="${id}"] [data-user-id]`)]
      .filter((el) => el.dataset.status !== 'OFFLINE').length, launch.id);
    await waitForStatus(pa, 'ann', 'ONLINE');
    assert.equal(await summary(), `${await online()} of 5 online`);
    const before = await online();

    // bob (in Spring launch) signs in, then goes Busy: both show live.
    const B = await person('bob');
    const pb = await B.login();
    await waitForStatus(pa, 'bob', 'ONLINE', 10_000);
    await waitUntil(async () => (await summary()) === `${before + 1} of 5 online`, 10_000, 'the count went up');
    await pb.selectOption('#status-picker', 'BUSY');
    await waitForStatus(pa, 'bob', 'BUSY', 10_000);
    assert.equal(await summary(), `${before + 1} of 5 online`, 'Busy counts as online');
  }));

  test('/members: "No one matches", and the filter folds as the server', { timeout: 90_000 }, suite.run(async () => {
    const A = await person('ann');
    const pa = await A.login();
    await goto(pa, '/members');
    const everyone = await shownIds(pa);
    assert.equal(everyone.length, 12);
    assert.equal(await pa.isHidden('#no-match'), true, 'no empty line while people are shown');

    await pa.fill('#member-filter', 'zzz');
    await waitUntil(async () => !(await pa.isHidden('#no-match')), 5000, 'the empty line');
    assert.match(await pa.textContent('#no-match'), /^No one matches “zzz”/);
    assert.deepEqual(await shownIds(pa), []);
    await pa.fill('#member-filter', '');
    await waitUntil(async () => pa.isHidden('#no-match'), 5000, 'the empty line gone');
    assert.equal((await shownIds(pa)).length, 12);

    // Each query finds in the page exactly whom GET /api/members?q= finds.
    for (const q of ['CHLOÉ', 'inÊs', 'an', 'LEE', "o'b", 'é', 'ÊS CO', 'zzz', ' Kim ']) {
      await pa.fill('#member-filter', q);
      const shown = (await shownIds(pa)).sort();
      const server = await apiGet(pa, `/api/members?limit=100&q=${encodeURIComponent(q.trim())}`);
      assert.deepEqual(shown, server.members.map((m) => m.user).sort(), `"${q}": page and server agree`);
      assert.equal(await pa.isHidden('#no-match'), shown.length > 0, `"${q}": empty line`);
    }
    assert.deepEqual((await apiGet(pa, '/api/members?q=chlo%C3%A9')).members.map((m) => m.user), ['chloe']);
  }));
});

// A person named like HTML is shown as that literal text everywhere: no
// element is created from the name, no script runs (a dialog fails the test).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server, Person, launchBrowser, goto, waitForStatus, apiGet, withDiagnostics, personInfo, sleep, keepActive,
} from './lib.mjs';

const EVIL = '<img src=x onerror=alert(1)>';
const EVIL_USER = { org: 'demo', id: 'mallory', email: 'mallory@demo.example', name: EVIL };

describe('names are text, not HTML', () => {
  let server;
  let browser;
  const people = [];
  const person = async (id, opts) => {
    const p = new Person(browser, server, id, opts);
    people.push(p);
    return p.open();
  };

  before(async () => {
    server = new Server();
    server.seedDemo();
    server.addUser(EVIL_USER);
    server.addChannel({ org: 'demo', name: 'html-names', members: ['ann', EVIL_USER.id] });
    await server.start();
    browser = await launchBrowser();
  });

  after(async () => {
    for (const p of people) await p.close();
    if (browser) await browser.close();
    if (server) await server.cleanup();
  });

  async function assertLiteral(page, where) {
    const infos = await personInfo(page, EVIL_USER.id);
    assert.ok(infos.length >= 1, `${where}: no element with data-user-id=${EVIL_USER.id}`);
    for (const i of infos) {
      assert.equal(i.name && i.name.trim(), EVIL, `${where}: .person-name text`);
    }
    const injected = await page.evaluate(() => ({
      imgX: [...document.querySelectorAll('img')].filter((i) => i.getAttribute('src') === 'x').length,
      onerror: document.querySelectorAll('[onerror]').length,
      imgInPerson: document.querySelectorAll('.person-name img').length,
    }));
    assert.deepEqual(injected, { imgX: 0, onerror: 0, imgInPerson: 0 }, `${where}: elements made from the name`);
  }

  test('a user named <img src=x onerror=alert(1)> renders as literal text, no dialog, no <img src=x>',
    { timeout: 90_000 },
    withDiagnostics(() => server, () => people, async () => {
      const A = await person('ann');
      const pa = await A.login();

      // mallory signs in (live events carry the name too) and changes status.
      const M = await person(EVIL_USER.id, { mail: EVIL_USER.email });
      const pm = await M.login();
      const active = keepActive(pm); // away_after is 3 s
      try {
        await goto(pa, '/members');
        await waitForStatus(pa, EVIL_USER.id, 'ONLINE', 5000);
        await assertLiteral(pa, '/members');
        await pm.selectOption('#status-picker', 'BUSY');
        await waitForStatus(pa, EVIL_USER.id, 'BUSY', 5000);
        await assertLiteral(pa, '/members after a live event');

        const { channels } = await apiGet(pa, '/api/channels');
        const room = channels.find((c) => c.name === 'html-names');
        const general = channels.find((c) => c.name === 'general');
        assert.ok(room && general, 'channels html-names and general exist');
        for (const p of ['/channels', `/channels/${room.id}`, `/users/${EVIL_USER.id}`]) {
          await goto(pa, p);
          await waitForStatus(pa, EVIL_USER.id, 'BUSY', 5000);
          await assertLiteral(pa, p);
        }
        // A status change while A is on the profile page.
        await pm.selectOption('#status-picker', 'ONLINE');
        await waitForStatus(pa, EVIL_USER.id, 'ONLINE', 5000);
        await assertLiteral(pa, `/users/${EVIL_USER.id} after a live event`);

        // mallory's own pages (the name in hello and in the header, if shown).
        for (const p of ['/', '/members']) {
          await goto(pm, p);
          const imgs = await pm.evaluate(() =>
            [...document.querySelectorAll('img')].filter((i) => i.getAttribute('src') === 'x').length);
          assert.equal(imgs, 0, `mallory's own ${p}: <img src=x> elements`);
        }
      } finally {
        active.stop();
      }
      await goto(pa, '/');
      await sleep(500);
      assert.deepEqual([...A.dialogs, ...M.dialogs], [], 'dialogs fired');
      assert.deepEqual([...A.pageErrors, ...M.pageErrors], [], 'uncaught page errors');
    }));
});

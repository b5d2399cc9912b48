// Pictures of issue 13's controls at a phone's width (390 px), written to
// docs/screenshots/status-message.png (the status message form, a message
// set), dnd.png (Do Not Disturb on, with a weekly schedule) and
// profile.png (a colleague's profile: message, DND badge, local time), and
// a check that no page of people is wider than the screen. What is shown
// is checked before each picture is taken.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { demoSuite, Person, goto, waitForStatus, waitUntil, apiGet, apiPut, keepActive, REPO } from './lib.mjs';

const OUT = path.join(REPO, 'docs', 'screenshots');
const WIDTH = 390;

class Phone extends Person {
  constructor(browser, server, userId, timezoneId) {
    super(browser, server, userId);
    this.timezoneId = timezoneId;
  }

  async open() {
    this.context = await this.browser.newContext({
      baseURL: this.server.url, viewport: { width: WIDTH, height: 844 }, timezoneId: this.timezoneId,
    });
    this.context.setDefaultTimeout(15_000);
    this.context.setDefaultNavigationTimeout(15_000);
    this.context.on('page', (p) => this._watch(p));
    return this;
  }
}

// A picture of one element, the page's full width (390 px).
async function shoot(page, selector, file) {
  // The sticky header would cover the top of a picture of the page's
  // middle: out of the way while it is taken (CSSOM, as the CSP allows).
  await page.evaluate(() => { document.querySelector('.app-header').style.position = 'static'; });
  const el = page.locator(selector);
  await el.scrollIntoViewIfNeeded();
  const box = await el.boundingBox();
  assert.ok(box, `${selector} is on screen`);
  const scroll = await page.evaluate(() => window.scrollY);
  const y = Math.max(0, box.y + scroll - 12);
  await page.screenshot({
    path: file, fullPage: true, animations: 'disabled',
    clip: { x: 0, y, width: WIDTH, height: Math.ceil(box.height + 24) },
  });
  const st = fs.statSync(file);
  assert.ok(st.size > 5000, `${file} is a real picture (${st.size} bytes)`);
  await page.evaluate(() => { document.querySelector('.app-header').style.position = ''; });
  return st.size;
}

async function assertFits(page, where) {
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(w <= WIDTH, `${where} is ${w} px wide at ${WIDTH} px`);
}

describe('status message, DND and profile at 390 px', () => {
  // Long idle thresholds: the statuses must hold still for the pictures.
  const suite = demoSuite({ PRESENCED_AWAY_AFTER: '300s', PRESENCED_OFFLINE_AFTER: '1800s' });

  test('docs/screenshots/{status-message,dnd,profile}.png, and nothing wider than the screen',
    { timeout: 90_000 },
    suite.run(async (t) => {
      const B = new Phone(suite.browser, suite.server, 'bob', 'Europe/Paris');
      suite.people.push(B);
      await B.open();
      const pb = await B.login();
      const A = new Phone(suite.browser, suite.server, 'ann', 'America/New_York');
      suite.people.push(A);
      await A.open();
      const pa = await A.login();
      const active = keepActive(pb);
      try {
        await assertFits(pb, 'the dashboard');
        fs.mkdirSync(OUT, { recursive: true });

        // A message with Busy, set with a preset.
        await pb.selectOption('#message-status', 'BUSY');
        await pb.click('.preset >> text=In a meeting');
        await waitUntil(async () => /Message set/.test(await pb.textContent('#message-note')), 5000, 'message set');
        await waitForStatus(pb, 'bob', 'BUSY', 5000);
        await pb.waitForSelector('#you .status-message:not([hidden])');
        await pb.click('#emoji-toggle');
        await pb.waitForSelector('#emoji-grid:not([hidden])');
        await assertFits(pb, 'the dashboard, message set');
        const f1 = path.join(OUT, 'status-message.png');
        t.diagnostic(`wrote ${f1} (${await shoot(pb, '#you', f1)} bytes)`);
        await pb.click('#emoji-toggle');

        // DND on for an hour, a schedule of two rows.
        await pb.click('#dnd-1h');
        await waitUntil(async () => /until/.test(await pb.textContent('#dnd-state')), 5000, 'DND on');
        await pb.click('#dnd-add-row');
        await pb.click('#dnd-add-row');
        const row2 = pb.locator('#dnd-schedule .schedule-row').nth(1);
        for (const d of ['mon', 'tue', 'wed', 'thu', 'fri'])
          await row2.locator(`input[value="${d}"]`).uncheck();
        for (const d of ['sat', 'sun'])
          await row2.locator(`input[value="${d}"]`).check();
        await row2.locator('.sched-all-day').check();
        await pb.click('#dnd-save-schedule');
        await waitUntil(async () => /Schedule saved/.test(await pb.textContent('#schedule-note')), 5000, 'schedule saved');
        await pb.check('#dnd-while-busy');
        await waitUntil(async () => (await apiGet(pb, '/api/me')).settings.dnd.while_busy === true, 5000, 'while busy');
        await assertFits(pb, 'the dashboard, DND on');
        const f2 = path.join(OUT, 'dnd.png');
        t.diagnostic(`wrote ${f2} (${await shoot(pb, '#dnd', f2)} bytes)`);
        await pb.waitForSelector('#profile-settings');
        await assertFits(pb, 'the dashboard, time zone and privacy');

        // A sees it all on bob's profile.
        await goto(pa, '/users/bob');
        await waitForStatus(pa, 'bob', 'BUSY', 5000);
        await pa.waitForSelector('.profile-card .status-message:not([hidden])');
        await pa.waitForSelector('.profile-card .dnd-badge:not([hidden])');
        await pa.waitForSelector('.profile-card .local-time:not([hidden])');
        await assertFits(pa, '/users/bob');
        const f3 = path.join(OUT, 'profile.png');
        t.diagnostic(`wrote ${f3} (${await shoot(pa, '.profile-card', f3)} bytes)`);

        const { channels } = await apiGet(pa, '/api/channels');
        const general = channels.find((c) => c.name === 'general');
        for (const p of ['/', '/members', '/channels', `/channels/${general.id}`]) {
          await goto(pa, p);
          await pa.waitForSelector('[data-user-id="bob"] .status-message:not([hidden])');
          await assertFits(pa, p);
        }
        await apiPut(pb, '/api/dnd', null);
      } finally {
        active.stop();
      }
    }));
});

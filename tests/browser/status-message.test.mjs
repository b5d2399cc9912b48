// Status messages, Do Not Disturb, local time, last seen and its privacy
// (issue 13), between two people in separate browser contexts: what B sets
// on the dashboard, A sees next to B's name on every page where people
// appear, live, and it goes away by itself at its expiry.
//
// Times: the waits come from what the test set (an expiry ~25 s ahead) plus
// a generous slack; nothing asserts on how fast this machine is.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  demoSuite, Person, goto, waitForStatus, waitUntil, apiGet, apiPut, keepActive, personInfo, sleep,
} from './lib.mjs';

const SLACK = 10_000;  // past an expiry, before the page must have dropped it

// A person whose browser is in another time zone (the page sends it to the
// server on its first load: docs/protocol.md "tz").
class ZonedPerson extends Person {
  constructor(browser, server, userId, timezoneId) {
    super(browser, server, userId);
    this.timezoneId = timezoneId;
  }

  async open() {
    this.context = await this.browser.newContext({
      baseURL: this.server.url, viewport: { width: 1200, height: 800 }, timezoneId: this.timezoneId,
    });
    this.context.setDefaultTimeout(15_000);
    this.context.setDefaultNavigationTimeout(15_000);
    this.context.on('page', (p) => this._watch(p));
    return this;
  }
}

// What every element of userId shows of its message, DND and times.
async function extras(page, userId) {
  return page.evaluate((uid) => [...document.querySelectorAll(`[data-user-id="${CSS.escape(uid)}"]`)].map((el) => {
    const msg = el.querySelector('.status-message');
    const badge = el.querySelector('.dnd-badge');
    const local = el.querySelector('.local-time');
    const last = el.querySelector('.last-seen');
    const shown = (x) => !!x && !x.hidden && x.getClientRects().length > 0;
    return {
      message: shown(msg) ? msg.querySelector('.status-message-text').textContent : null,
      emoji: shown(msg) ? msg.querySelector('.status-emoji').textContent : null,
      messageTitle: msg ? msg.title : null,
      when: shown(msg) && msg.querySelector('.status-message-when')
        ? msg.querySelector('.status-message-when').textContent : null,
      dnd: shown(badge),
      dndLabel: badge ? badge.getAttribute('aria-label') : null,
      dndTitle: badge ? badge.title : null,
      localTime: shown(local) ? local.textContent : null,
      title: el.title,
      lastSeen: last ? (shown(last) ? last.textContent : '') : null,
    };
  }), userId);
}

async function waitExtras(page, userId, ok, what, timeout = 5000) {
  let last;
  try {
    return await waitUntil(async () => {
      last = await extras(page, userId);
      return last.length > 0 && last.every(ok) ? last : false;
    }, timeout, what);
  } catch (e) {
    e.message += ` on ${page.url()}; elements: ${JSON.stringify(last)}`;
    throw e;
  }
}

// The "datetime-local" value of ms in the page's own zone.
async function localInput(page, ms) {
  return page.evaluate((t) => {
    const d = new Date(t);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }, ms);
}

const CLEARS = /^Clears (at|on) \S/;

describe('status messages, DND, local time, last seen', () => {
  const suite = demoSuite();
  const { person } = suite;
  let general;

  test('B sets a message on the dashboard; A sees it everywhere with its expiry on hover; it goes at expiry',
    { timeout: 120_000 },
    suite.run(async () => {
      const A = await person('ann');
      const pa = await A.login();
      const B = await person('bob');
      const pb = await B.login();
      const active = keepActive(pb);
      try {
        general = (await apiGet(pa, '/api/channels')).channels.find((c) => c.name === 'general');
        assert.ok(general, 'channel general exists');

        // The presets are one-click choices: "In a meeting", 1 hour.
        const presets = await pb.$$eval('.preset', (bs) => bs.map((b) => b.textContent));
        assert.ok(presets.length >= 5, `presets shown: ${JSON.stringify(presets)}`);
        const meeting = pb.locator('.preset', { hasText: 'In a meeting' });
        const before = Date.now();
        await meeting.click();
        await waitUntil(async () => /Message set/.test(await pb.textContent('#message-note')), 5000, 'B: "Message set."');
        assert.equal(await pb.inputValue('#message-text'), 'In a meeting', 'the preset filled the text');
        assert.equal(await pb.inputValue('#message-expires'), '1h', 'the preset filled the expiry');
        const me = await apiGet(pb, '/api/me');
        assert.equal(me.settings.message.text, 'In a meeting');
        assert.equal(me.settings.message.emoji, '📅');
        const hour = me.settings.message.expires - before;
        assert.ok(hour > 3590_000 && hour < 3700_000, `expires in about an hour: ${hour} ms`);

        // A: members directory, the channel, the channel list, the profile.
        const seen = (x) => x.message === 'In a meeting' && x.emoji === '📅' && CLEARS.test(x.messageTitle);
        for (const p of ['/members', `/channels/${general.id}`, '/channels', '/users/bob', '/']) {
          await goto(pa, p);
          await waitExtras(pa, 'bob', seen, `A sees bob's message on ${p}`);
        }
        await goto(pa, '/users/bob');
        const [profile] = await extras(pa, 'bob');
        assert.match(profile.when ?? '', CLEARS, 'the profile says when it clears, as text');

        // A too long message: the server's error, next to the control.
        await pb.fill('#message-text', 'x'.repeat(101));
        assert.equal((await pb.textContent('#message-count')).trim(), '101/100', 'the limit is shown');
        await pb.click('#message-save');
        await pb.waitForSelector('#message-error:not([hidden])');
        assert.equal(await pb.getAttribute('#message-error', 'data-code'), 'invalid_message');
        assert.ok((await pb.textContent('#message-error')).trim().length > 0, 'the error says why');
        assert.equal((await apiGet(pb, '/api/me')).settings.message.text, 'In a meeting', 'nothing stored');

        // A custom one, clearing ~25 s from now (the date-and-time input),
        // with Busy that goes with it. A watches three pages, live.
        const pm = await A.newPage();
        const pc = await A.newPage();
        await goto(pa, '/users/bob');
        await goto(pm, '/members');
        await goto(pc, `/channels/${general.id}`);
        for (const p of [pa, pm, pc])
          await p.evaluate(() => { window.__noReload = 1; });
        const expires = Date.now() + 25_000;
        await pb.fill('#message-text', 'Back in a moment <b>not bold</b>');
        await pb.fill('#message-emoji', '☕');
        await pb.selectOption('#message-expires', 'custom');
        await pb.fill('#message-until', await localInput(pb, expires));
        await pb.selectOption('#message-status', 'BUSY');
        await pb.check('#message-clear-status');
        await pb.click('#message-save');
        await waitUntil(async () => /Message set/.test(await pb.textContent('#message-note')), 5000,
          'B: "Message set." for the custom one');
        const custom = (await apiGet(pb, '/api/me')).settings.message;
        assert.ok(Math.abs(custom.expires - expires) < 1500, `expires as chosen: ${custom.expires} vs ${expires}`);
        assert.equal(custom.clear_status, true);
        const live = (x) => x.message === 'Back in a moment <b>not bold</b>' && x.emoji === '☕' &&
          CLEARS.test(x.messageTitle);
        for (const p of [pa, pm, pc]) {
          await waitExtras(p, 'bob', live, `A sees the new message live on ${p.url()}`);
          await waitForStatus(p, 'bob', 'BUSY', 5000);
          assert.equal(await p.evaluate(() => document.querySelectorAll('.status-message b').length), 0,
            'the message is text, not HTML');
        }

        // At expiry it goes, and Busy with it, without a reload.
        for (const p of [pa, pm, pc]) {
          await waitExtras(p, 'bob', (x) => x.message === null, `bob's message gone on ${p.url()}`,
            Math.max(1000, expires + SLACK - Date.now()));
          await waitForStatus(p, 'bob', 'ONLINE', 5000);
          assert.equal(await p.evaluate(() => window.__noReload), 1, `${p.url()} was not reloaded`);
        }
        assert.equal((await apiGet(pb, '/api/me')).settings.message, null, 'the server cleared it');

        // Clear: set one, then the Clear button.
        await pb.click('.preset >> text=Commuting');
        await waitExtras(pa, 'bob', (x) => x.message === 'Commuting', 'A sees "Commuting"');
        await pb.click('#message-clear');
        await waitExtras(pa, 'bob', (x) => x.message === null, 'A sees the message cleared');
        await pm.close();
        await pc.close();
      } finally {
        active.stop();
      }
      assert.deepEqual(A.pageErrors, [], 'no uncaught page errors in A');
      assert.deepEqual(B.pageErrors, [], 'no uncaught page errors in B');
    }));

  test('DND: "Pause 30 min" shows B\'s badge to A, "Turn off" removes it; the schedule shows the server\'s errors',
    { timeout: 90_000 },
    suite.run(async () => {
      const A = await person('ann');
      const pa = await A.login();
      const B = await person('bob');
      const pb = await B.login();
      const active = keepActive(pb);
      try {
        await goto(pa, '/members');
        const pu = await A.newPage();
        await goto(pu, '/users/bob');
        for (const p of [pa, pu])
          await waitExtras(p, 'bob', (x) => !x.dnd, `no badge yet on ${p.url()}`);

        await pb.click('#dnd-30m');
        await waitUntil(async () => /until/.test(await pb.textContent('#dnd-state')), 5000, 'B: "Do not disturb is on until ..."');
        for (const p of [pa, pu]) {
          await waitExtras(p, 'bob', (x) => x.dnd && /^Do not disturb until \S/.test(x.dndLabel) &&
            x.dndTitle === x.dndLabel, `A sees bob's DND badge on ${p.url()}`);
        }
        const notify = await apiGet(pa, '/api/users/bob/notify');
        assert.equal(notify.notify, false, 'no notifications for bob now');
        for (const p of ['/channels', `/channels/${general.id}`, '/']) {
          await goto(pu, p);
          await waitExtras(pu, 'bob', (x) => x.dnd, `badge on ${p}`);
        }

        await pb.click('#dnd-off');
        await waitUntil(async () => /Notifications are on/.test(await pb.textContent('#dnd-state')), 5000,
          'B: "Notifications are on."');
        for (const p of [pa, pu])
          await waitExtras(p, 'bob', (x) => !x.dnd, `bob's badge gone on ${p.url()}`);

        // "While I'm Busy": Busy turns it on, with no known end.
        await pb.check('#dnd-while-busy');
        await waitUntil(async () => (await apiGet(pb, '/api/me')).settings.dnd.while_busy === true, 5000,
          'while_busy stored');
        await pb.selectOption('#status-picker', 'BUSY');
        await waitExtras(pa, 'bob', (x) => x.dnd && x.dndLabel === 'Do not disturb', 'badge while Busy');
        await pb.selectOption('#status-picker', 'ONLINE');
        await waitExtras(pa, 'bob', (x) => !x.dnd, 'no badge once Online');
        await pb.uncheck('#dnd-while-busy');

        // The weekly schedule: two rows sharing days overlap.
        await pb.click('#dnd-add-row');
        await pb.click('#dnd-add-row');
        assert.equal(await pb.locator('#dnd-schedule .schedule-row').count(), 2);
        await pb.click('#dnd-save-schedule');
        await pb.waitForSelector('#schedule-error:not([hidden])');
        assert.equal(await pb.getAttribute('#schedule-error', 'data-code'), 'invalid_schedule');
        assert.match(await pb.textContent('#schedule-error'), /overlap/i, 'the server\'s words');
        assert.deepEqual((await apiGet(pb, '/api/me')).settings.dnd.schedule, [], 'nothing stored');
        // Row 2: the weekend instead, 10:00 to 12:00.
        const row2 = pb.locator('#dnd-schedule .schedule-row').nth(1);
        for (const d of ['mon', 'tue', 'wed', 'thu', 'fri'])
          await row2.locator(`input[value="${d}"]`).uncheck();
        await row2.locator('input[value="sat"]').check();
        await row2.locator('input[value="sun"]').check();
        await row2.locator('.sched-start').fill('10:00');
        await row2.locator('.sched-end').fill('12:00');
        await pb.click('#dnd-save-schedule');
        await waitUntil(async () => /Schedule saved/.test(await pb.textContent('#schedule-note')), 5000,
          'B: "Schedule saved."');
        assert.equal(await pb.isHidden('#schedule-error'), true, 'the error is gone');
        const { schedule } = (await apiGet(pb, '/api/me')).settings.dnd;
        assert.deepEqual(schedule, [
          { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '18:00', end: '09:00' },
          { days: ['sat', 'sun'], start: '10:00', end: '12:00' },
        ]);
        // Kept across a reload; then removed.
        await goto(pb, '/');
        assert.equal(await pb.locator('#dnd-schedule .schedule-row').count(), 2, 'the rows come back');
        await pb.locator('#dnd-schedule .sched-remove').first().click();
        await pb.locator('#dnd-schedule .sched-remove').first().click();
        await pb.click('#dnd-save-schedule');
        await waitUntil(async () => (await apiGet(pb, '/api/me')).settings.dnd.schedule.length === 0, 5000,
          'schedule removed');
        await apiPut(pb, '/api/dnd', null);
        await pu.close();
      } finally {
        active.stop();
      }
      assert.deepEqual(B.pageErrors, [], 'no uncaught page errors in B');
    }));

  test('local time on the profile and on hover; AWAY/BUSY are not "Last seen"; hidden last seen',
    { timeout: 90_000 },
    suite.run(async () => {
      const A = await person('ann');
      const pa = await A.login();
      // B's browser is in Tokyo: the first page tells the server so.
      const B = new ZonedPerson(suite.browser, suite.server, 'chloe', 'Asia/Tokyo');
      suite.people.push(B);
      await B.open();
      const pb = await B.login();
      const active = keepActive(pb);
      try {
        const me = await apiGet(pb, '/api/me');
        assert.equal(me.settings.tz, 'Asia/Tokyo', 'the page set the zone');
        assert.equal((await apiGet(pb, '/api/users/chloe')).tz, 'Asia/Tokyo');
        assert.equal(await pb.inputValue('#tz-select'), 'Asia/Tokyo', 'the dashboard shows the zone');

        // A's profile page of B: "4:12 PM local time", Tokyo's clock.
        await goto(pa, '/users/chloe');
        const tokyo = (t) => new Intl.DateTimeFormat('en-US', { hour: 'numeric', minute: '2-digit', timeZone: 'Asia/Tokyo' })
          .format(new Date(t)) + ' local time';
        const [x] = await waitExtras(pa, 'chloe', (e) => !!e.localTime, 'local time on the profile');
        const t0 = Date.now();
        assert.ok([tokyo(t0), tokyo(t0 - 60_000), tokyo(t0 + 60_000)].includes(x.localTime.replace(/\u202f/g, ' ')),
          `Tokyo's time: ${x.localTime} vs ${tokyo(t0)}`);
        assert.equal(x.title, x.localTime, 'and on hover');
        await goto(pa, '/members');
        const [card] = await extras(pa, 'chloe');
        assert.match(card.title, /local time$/, `hover on /members: ${card.title}`);

        // B changes the zone on the dashboard.
        await pb.selectOption('#tz-select', 'Europe/Paris');
        await waitUntil(async () => (await apiGet(pb, '/api/me')).settings.tz === 'Europe/Paris', 5000, 'tz stored');
        const paris = (t) => new Intl.DateTimeFormat('en-US', { hour: 'numeric', minute: '2-digit', timeZone: 'Europe/Paris' })
          .format(new Date(t)) + ' local time';
        await waitExtras(pa, 'chloe', (e) => [paris(Date.now()), paris(Date.now() - 60_000)].includes(e.title.replace(/\u202f/g, ' ')),
          'A sees the new local time on hover, live');

        // AWAY and BUSY are connected: never "Last seen ...".
        for (const [status, text] of [['AWAY', 'Away now'], ['BUSY', 'Busy now']]) {
          await pb.selectOption('#status-picker', status);
          await waitForStatus(pa, 'chloe', status, 5000);
          const [e] = await extras(pa, 'chloe');
          assert.equal(e.lastSeen, text, `${status}: .last-seen`);
          await goto(pa, '/users/chloe');
          const [p] = await extras(pa, 'chloe');
          assert.equal(p.lastSeen, text, `${status} on the profile`);
          await goto(pa, '/members');
        }
        await pb.selectOption('#status-picker', 'ONLINE');
        await waitForStatus(pa, 'chloe', 'ONLINE', 5000);

        // Hide last seen: A, watching, sees no "Last seen" when B goes.
        await pb.check('#hide-last-seen');
        await waitUntil(async () => (await apiGet(pb, '/api/me')).settings.hide_last_seen === true, 5000,
          'hide_last_seen stored');
        assert.equal((await apiGet(pa, '/api/users/chloe')).last_seen, null, 'the server hides it');
        active.stop();
        await Promise.all([pb.waitForURL((u) => u.pathname.startsWith('/login')), pb.click('#logout')]);
        await waitForStatus(pa, 'chloe', 'OFFLINE', 8000);
        const [gone] = await extras(pa, 'chloe');
        assert.equal(gone.lastSeen, '', `no last seen at all for a person who hides it: ${JSON.stringify(gone)}`);
        await goto(pa, '/users/chloe');
        await waitForStatus(pa, 'chloe', 'OFFLINE', 1000);
        const [after] = await extras(pa, 'chloe');
        assert.doesNotMatch(after.lastSeen, /Last seen/, 'no "Last seen" on a fresh page either');
      } finally {
        active.stop();
      }
    }));

  test('"Last seen" moves on without a reload (the shared timer)',
    { timeout: 60_000 },
    suite.run(async () => {
      // dev signs in and out; A's page, whose clock is then moved on two
      // minutes, sees them go by.
      const dev = await suite.server.apiLogin('dev');
      await dev.logout();
      const A = await person('ann');
      const pa = await A.newPage();
      await pa.clock.install();
      await A.login(pa);
      // The profile: no timer of its own, only app.js's.
      await goto(pa, '/users/dev');
      await waitForStatus(pa, 'dev', 'OFFLINE', 5000);
      await waitUntil(async () => (await personInfo(pa, 'dev'))[0]?.lastSeen === 'Last seen just now', 5000,
        'dev: "Last seen just now"');
      await pa.evaluate(() => { window.__noReload = 1; });
      for (let i = 0; i < 8; i++) {  // 2 minutes, 15 s at a time
        await pa.clock.fastForward(15_000);
        await sleep(100);
      }
      await waitUntil(async () => /^Last seen [23] minutes ago$/.test((await personInfo(pa, 'dev'))[0]?.lastSeen ?? ''),
        5000, 'dev: "Last seen 2 minutes ago"');
      assert.equal(await pa.evaluate(() => window.__noReload), 1, 'not reloaded');
    }));
});

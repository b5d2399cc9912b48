// A 10,000-member organization with 36-character (UUID) ids works through
// the browser client: its snapshot and member list are each larger than
// max_out (1 MiB), which must not get the page's socket or request dropped
// (issue 9, item 14). The page uses the org-wide snapshot, not subscribe.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  demoSuite, waitReady, waitForStatus,
} from './lib.mjs';

const EXTRA = 10_000;

// Members straight into the database (the CLI would hash a password for
// each): ids are UUIDs, names long enough to make each entry ~120 bytes.
function addMembers(db, org, n) {
  const now = Date.now();
  const rows = [];
  for (let i = 0; i < n; i++) {
    const id = crypto.randomUUID();
    rows.push(`('${org}','${id}','Member ${String(i).padStart(5, '0')} ${id.slice(0, 8)}',${now})`);
  }
  const sql = `BEGIN;\nINSERT INTO users(org, id, name, created_ms) VALUES\n${rows.join(',\n')};\nCOMMIT;\n`;
  const file = path.join(path.dirname(db), 'members.sql');
  fs.writeFileSync(file, sql);
  const r = spawnSync('sqlite3', [db, `.read ${file}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, `sqlite3: ${r.stderr}`);
}

describe('a 10,000-member organization', () => {
  // bob signs in through the API, without a socket: his login window
  // (login_grace) must outlast a loaded machine's slowest page update.
  const suite = demoSuite({ PRESENCED_LOGIN_GRACE: '120s' },
    { prepare: (server) => addMembers(server.db, 'demo', EXTRA) });
  const { person } = suite;

  test('the directory lists everyone and its dots stay live', { timeout: 180_000 }, suite.run(async () => {
    const A = await person('ann');
    const pa = await A.login();
    // Rendering 10,000 cards takes seconds: allow for a loaded machine.
    await pa.goto('/members', { timeout: 120_000 });
    await waitReady(pa, 120_000);
    const shown = await pa.locator('#directory > [data-user-id]').count();
    assert.ok(shown >= EXTRA, `all ${EXTRA} members on /members (saw ${shown})`);
    // The page's socket took the big snapshot and stays open: a change of
    // another person still arrives.
    const bob = await suite.server.apiLogin('bob');
    await bob.setStatus('BUSY');
    await waitForStatus(pa, 'bob', 'BUSY', 60_000);
    assert.doesNotMatch(fs.readFileSync(suite.server.logFile, 'utf8'), /output queue over/,
      'nobody was dropped as a slow consumer');
  }));
});

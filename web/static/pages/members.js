// /members - the directory: large dot on each avatar, "Online now" or
// "Last seen 5 minutes ago" (refreshed every 30 s and on every event).
//
// A small organization (under LARGE members) is listed whole, as always,
// filtered in the page. A large one is paged through the server
// (GET /api/members?q=&offset=&limit=): search runs there, with the same
// folding as the filter here (fold() in app.js), and the page subscribes
// over the WebSocket to the people it shows and to no one else, so 10,000
// members cost it one page.
import {
  api, h, person, startPage, sortList, byName, knownMembers, personsOf, refreshAllLastSeen, fold,
} from '../app.js';
import { connect } from '../presence.js';

const LARGE = 500;          // members from which the directory is paged
const PAGE = 60;            // people per page of a large directory
const SEARCH_DELAY_MS = 250;

const card = (m) => person(m, { variant: 'card', size: 'lg', lastSeen: true });
const number = (n) => Number(n).toLocaleString('en-US');

let list, summary, filter, noMatch;

function noMatchLine() {
  return h('p', { id: 'no-match', class: 'card muted empty-line', role: 'status', hidden: true });
}

function showNoMatch(q, none) {
  noMatch.hidden = !none;
  noMatch.textContent = none ? 'No one matches \u201c' + q + '\u201d.' : '';
}

function head(...extra) {
  filter = h('input', { type: 'search', id: 'member-filter', placeholder: 'Find a person', autocomplete: 'off' });
  summary = h('p', { id: 'directory-summary', class: 'muted', role: 'status' });
  noMatch = noMatchLine();
  return [
    h('div', { class: 'page-head' },
      h('h1', { class: 'page-title', text: 'Members' }), summary),
    h('div', { class: 'toolbar' },
      h('label', { for: 'member-filter', class: 'visually-hidden', text: 'Find a person' }), filter),
    ...extra,
  ];
}

// ---- a small organization: everyone, filtered here -----------------------

function small() {
  const applyFilter = () => {
    const raw = filter.value.trim();
    const q = fold(raw);
    let shown = 0;
    for (const el of list.children) {
      const name = fold(el.querySelector('.person-name').textContent);
      el.hidden = q !== '' && !name.includes(q);
      if (!el.hidden)
        shown++;
    }
    list.dataset.shown = String(shown);
    showNoMatch(raw, shown === 0 && q !== '');
  };

  const refreshSummary = () => {
    const shown = new Set([...list.children].map((el) => el.dataset.userId));
    const all = knownMembers().filter((m) => shown.has(String(m.user)));
    const online = all.filter((m) => m.status !== 'OFFLINE').length;  // as everywhere: not OFFLINE
    summary.textContent = all.length + (all.length === 1 ? ' member' : ' members') + ' · ' + online + ' online';
  };

  return {
    active: 'members',
    load: () => api('/api/presence'),
    render: (data) => {
      const members = [...(data.members || [])].sort(byName);
      list = h('ul', { id: 'directory', class: 'directory', 'aria-label': 'Members' }, members.map(card));
      document.getElementById('main').replaceChildren(...head(list));
      list.after(noMatch);
      filter.addEventListener('input', applyFilter);
      refreshSummary();
    },
    onPresence: (m) => {
      if (!personsOf(m.user).length) {  // someone new in the organization
        list.append(card(m));
        sortList(list, byName);
        applyFilter();
      }
      // refreshPerson() has redrawn this member's "last seen"; the others'
      // are kept current by the 30 s timer (rewriting all of them per
      // event is thousands of DOM writes in a large organization).
      refreshSummary();
    },
    onSnapshot: () => {
      refreshAllLastSeen();
      refreshSummary();
    },
  };
}

// ---- a large organization: a page at a time, from the server ---------------

function large(first, presence) {
  let query = '';           // what the shown page was asked with
  let page = first;         // the answer shown
  let asked = 0;            // answers older than the last request are dropped
  let timer = 0;
  let pager, prev, next, info, error;

  const url = (q, offset) => '/api/members?q=' + encodeURIComponent(q) +
    '&offset=' + offset + '&limit=' + PAGE;

  const refreshSummary = () => {
    const online = query === '' && presence.online != null ? presence.online : page.online;
    summary.textContent = query === ''
      ? number(page.total) + (page.total === 1 ? ' member' : ' members') + ' · ' + number(online) + ' online'
      : number(page.total) + (page.total === 1 ? ' match' : ' matches') + ' · ' + number(page.online) + ' online';
  };

  // Shows an answer and moves the subscriptions to its people: the new
  // ones first, so that someone on both pages is never left unfollowed.
  const show = (data) => {
    const before = presence.subscriptions();
    page = data;
    const members = data.members || [];
    list.replaceChildren(...members.map(card));
    const ids = members.map((m) => String(m.user));
    const keep = new Set(ids);
    presence.subscribe(ids);
    presence.unsubscribe(before.filter((id) => !keep.has(id)));
    const from = members.length ? data.offset + 1 : 0;
    info.textContent = members.length
      ? number(from) + '–' + number(data.offset + members.length) + ' of ' + number(data.total)
      : '';
    prev.disabled = data.offset <= 0;
    next.disabled = data.offset + members.length >= data.total;
    pager.hidden = data.total <= PAGE && data.offset === 0;
    list.dataset.shown = String(members.length);
    list.dataset.offset = String(data.offset);
    showNoMatch(query, data.total === 0 && query !== '');
    refreshSummary();
  };

  const go = async (q, offset) => {
    clearTimeout(timer);
    const mine = ++asked;
    list.setAttribute('aria-busy', 'true');
    try {
      const data = await api(url(q, offset));
      if (mine !== asked)
        return;
      query = q;
      error.hidden = true;
      show(data);
    } catch (e) {
      if (mine !== asked)
        return;
      error.hidden = false;
      error.textContent = 'Could not load members: ' + e.message;
    } finally {
      if (mine === asked)
        list.removeAttribute('aria-busy');
    }
  };

  return {
    active: 'members',
    load: () => first,
    render: () => {
      list = h('ul', { id: 'directory', class: 'directory', 'aria-label': 'Members' });
      prev = h('button', { id: 'page-prev', type: 'button', class: 'btn', text: 'Previous' });
      next = h('button', { id: 'page-next', type: 'button', class: 'btn', text: 'Next' });
      info = h('span', { id: 'page-info', class: 'muted', 'aria-live': 'polite' });
      pager = h('nav', { class: 'pager', 'aria-label': 'Pages of members' }, prev, info, next);
      error = h('p', { class: 'form-error', role: 'alert', hidden: true });
      document.getElementById('main').replaceChildren(...head(error, list), pager);
      list.after(noMatch);
      prev.addEventListener('click', () => go(query, Math.max(0, page.offset - PAGE)));
      next.addEventListener('click', () => go(query, page.offset + PAGE));
      const search = () => go(filter.value.trim(), 0);
      filter.addEventListener('input', () => {
        clearTimeout(timer);
        timer = setTimeout(search, SEARCH_DELAY_MS);
      });
      filter.addEventListener('keydown', (e) => {
        if (e.key === 'Enter')
          search();
      });
      show(first);
      presence.on('online', refreshSummary);
    },
    // Events come only for the people shown; nobody is added to a page.
    onSnapshot: () => refreshAllLastSeen(),
  };
}

// The organization's size decides, before the socket connects: a large
// one's must never take the whole organization's snapshot.
let first = null;
try {
  first = await api('/api/members?limit=' + PAGE);
} catch (e) {
  first = null;  // the whole list then, which says what went wrong
}
if (first && first.total >= LARGE)
  startPage(large(first, connect({ subscribe: true })));
else
  startPage(small());

// /members - the directory: large dot on each avatar, "Online now" or
// "Last seen 5 minutes ago" (refreshed every 30 s and on every event).
import {
  api, h, person, startPage, sortList, byName, knownMembers, personsOf, refreshAllLastSeen,
} from '../app.js';

let list, summary, filter;

function applyFilter() {
  const q = filter.value.trim().toLocaleLowerCase();
  let shown = 0;
  for (const el of list.children) {
    const name = el.querySelector('.person-name').textContent.toLocaleLowerCase();
    el.hidden = q !== '' && !name.includes(q);
    if (!el.hidden)
      shown++;
  }
  list.dataset.shown = String(shown);
}

function refreshSummary() {
  const shown = new Set([...list.children].map((el) => el.dataset.userId));
  const all = knownMembers().filter((m) => shown.has(String(m.user)));
  const online = all.filter((m) => m.status !== 'OFFLINE').length;  // as everywhere: not OFFLINE
  summary.textContent = all.length + (all.length === 1 ? ' member' : ' members') + ' · ' + online + ' online';
}

startPage({
  active: 'members',
  load: () => api('/api/presence'),
  render: (data) => {
    const members = [...(data.members || [])].sort(byName);
    list = h('ul', { id: 'directory', class: 'directory', 'aria-label': 'Members' },
      members.map((m) => person(m, { variant: 'card', size: 'lg', lastSeen: true })));
    summary = h('p', { class: 'muted', role: 'status' });
    filter = h('input', { type: 'search', id: 'member-filter', placeholder: 'Find a person', autocomplete: 'off' });
    filter.addEventListener('input', applyFilter);
    document.getElementById('main').replaceChildren(
      h('div', { class: 'page-head' },
        h('h1', { class: 'page-title', text: 'Members' }), summary),
      h('div', { class: 'toolbar' },
        h('label', { for: 'member-filter', class: 'visually-hidden', text: 'Find a person' }), filter),
      list);
    refreshSummary();
    setInterval(refreshAllLastSeen, 30000);
  },
  onPresence: (m) => {
    if (!personsOf(m.user).length) {  // someone new in the organization
      list.append(person(m, { variant: 'card', size: 'lg', lastSeen: true }));
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
});

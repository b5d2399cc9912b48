// A channel (/channels/{id}) or a project (/projects/{id}): its members,
// online first (ONLINE, BUSY, AWAY, OFFLINE, then name), re-sorted live.
import { api, h, person, startPage, sortList, knownMember } from '../app.js';

export function groupPage(kind) {
  const isChannel = kind === 'channels';
  const id = decodeURIComponent(location.pathname.split('/')[2] || '');
  let list, summary, memberIds = [];

  const refresh = () => {
    sortList(list);
    const online = memberIds.filter((u) => (knownMember(u) || {}).status !== 'OFFLINE').length;
    summary.textContent = online + ' of ' + memberIds.length + ' online';
  };

  startPage({
    active: isChannel ? 'channels' : null,
    notFound: isChannel ? 'Channel not found' : 'Project not found',
    load: () => api('/api/' + kind + '/' + encodeURIComponent(id)),
    render: (g) => {
      document.title = (isChannel ? '#' + g.name : g.name) + ' · presenced';
      memberIds = g.members.map((m) => String(m.user));
      list = h('ul', { id: 'members', class: 'person-list', 'aria-label': isChannel ? 'Channel members' : 'Collaborators' },
        g.members.map((m) => person(m, { variant: 'row' })));
      summary = h('p', { class: 'group-summary muted', role: 'status' });
      const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
        isChannel ? h('a', { href: '/channels', text: 'Channels' }) : h('a', { href: '/projects', text: 'Projects' }),
        h('span', { 'aria-hidden': 'true', text: ' / ' }),
        h('span', { text: isChannel ? '#' + g.name : g.name }));
      const title = h('h1', { class: 'page-title' });
      if (isChannel)
        title.append(h('span', { class: 'hash', 'aria-hidden': 'true', text: '#' }));
      title.append(h('span', { class: 'group-name', text: g.name }));
      document.getElementById('main').replaceChildren(
        crumbs,
        h('div', { class: 'page-head' }, title, summary),
        h('section', { class: 'card' },
          h('h2', { class: 'visually-hidden', text: isChannel ? 'Members' : 'Collaborators' }),
          list, g.members.length ? null : h('p', { class: 'muted', text: 'No members yet.' })));
      refresh();
    },
    onPresence: (m) => {
      if (memberIds.includes(m.user))
        refresh();
    },
    onSnapshot: () => refresh(),
  });
}

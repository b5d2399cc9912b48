// The list pages of groups, /channels and /projects: every group with its
// members' avatars and live dots, and how many of them are online. The two
// pages differ only in the words and class names given here.
//   kind      "channel" | "project": class prefix, data-*-id, URL, API key
//   title, active, label(name), heading(g), empty, noMembers
import { api, h, person, startPage, sortList, knownMember } from '../app.js';

export function groupListPage({ kind, title, active, label, heading, empty, noMembers }) {
  const cards = [];  // {id, el, list, summary, members: [user ids]}
  const refresh = (card) => {
    sortList(card.list);
    const online = card.members.filter((u) => (knownMember(u) || {}).status !== 'OFFLINE').length;
    card.summary.textContent = online + ' of ' + card.members.length + ' online';
  };
  startPage({
    active,
    load: () => api('/api/' + kind + 's'),
    render: (data) => {
      const groups = data[kind + 's'] || [];
      const grid = h('div', { class: kind + '-grid' });
      for (const g of groups) {
        const list = h('ul', { class: 'person-chips', 'aria-label': label(g.name) },
          g.members.map((m) => person(m, { variant: 'chip', size: 'sm' })));
        const summary = h('span', { class: kind + '-summary muted' });
        const el = h('article', { class: kind + ' card' },
          h('header', { class: kind + '-head' },
            h('h2', { class: kind + '-name' },
              h('a', { href: '/' + kind + 's/' + encodeURIComponent(g.id) }, ...heading(g))),
            summary),
          list,
          g.members.length ? null : h('p', { class: 'muted', text: noMembers }));
        el.dataset[kind + 'Id'] = g.id;
        const card = { id: g.id, el, list, summary, members: g.members.map((m) => String(m.user)) };
        cards.push(card);
        grid.append(el);
        refresh(card);
      }
      document.getElementById('main').replaceChildren(
        h('h1', { class: 'page-title', text: title }),
        groups.length ? grid : h('p', { class: 'card muted', text: empty }));
    },
    onPresence: (m) => {
      for (const card of cards)
        if (card.members.includes(m.user))
          refresh(card);
    },
    onSnapshot: () => cards.forEach(refresh),
  });
}

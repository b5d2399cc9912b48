// /channels - every channel with its members' avatars and dots.
import { api, h, person, startPage, sortList, knownMember } from '../app.js';

const cards = [];  // {id, el, list, summary, members: [user ids]}

function refresh(card) {
  sortList(card.list);
  const online = card.members.filter((u) => (knownMember(u) || {}).status !== 'OFFLINE').length;
  card.summary.textContent = online + ' of ' + card.members.length + ' online';
}

startPage({
  active: 'channels',
  load: () => api('/api/channels'),
  render: (data) => {
    const channels = data.channels || [];
    const grid = h('div', { class: 'channel-grid' });
    for (const c of channels) {
      const list = h('ul', { class: 'person-chips', 'aria-label': 'Members of #' + c.name },
        c.members.map((m) => person(m, { variant: 'chip', size: 'sm' })));
      const summary = h('span', { class: 'channel-summary muted' });
      const href = '/channels/' + encodeURIComponent(c.id);
      const el = h('article', { class: 'channel card' },
        h('header', { class: 'channel-head' },
          h('h2', { class: 'channel-name' },
            h('a', { href }, h('span', { class: 'hash', 'aria-hidden': 'true', text: '#' }), c.name)),
          summary),
        list,
        c.members.length ? null : h('p', { class: 'muted', text: 'No members yet.' }));
      el.dataset.channelId = c.id;
      const card = { id: c.id, el, list, summary, members: c.members.map((m) => String(m.user)) };
      cards.push(card);
      grid.append(el);
      refresh(card);
    }
    document.getElementById('main').replaceChildren(
      h('h1', { class: 'page-title', text: 'Channels' }),
      channels.length ? grid : h('p', { class: 'card muted', text: 'No channels yet.' }));
  },
  onPresence: (m) => {
    for (const card of cards)
      if (card.members.includes(m.user))
        refresh(card);
  },
  onSnapshot: () => cards.forEach(refresh),
});

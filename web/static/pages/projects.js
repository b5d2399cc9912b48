// /projects - every project with its collaborators' avatars and live dots,
// and how many of them are online (as /channels does for channels).
import { api, h, person, startPage, sortList, knownMember } from '../app.js';

const cards = [];  // {id, el, list, summary, members: [user ids]}

function refresh(card) {
  sortList(card.list);
  const online = card.members.filter((u) => (knownMember(u) || {}).status !== 'OFFLINE').length;
  card.summary.textContent = online + ' of ' + card.members.length + ' online';
}

startPage({
  active: 'projects',
  load: () => api('/api/projects'),
  render: (data) => {
    const projects = data.projects || [];
    const grid = h('div', { class: 'project-grid' });
    for (const p of projects) {
      const list = h('ul', { class: 'person-chips', 'aria-label': 'Collaborators of ' + p.name },
        p.members.map((m) => person(m, { variant: 'chip', size: 'sm' })));
      const summary = h('span', { class: 'project-summary muted' });
      const el = h('article', { class: 'project card' },
        h('header', { class: 'project-head' },
          h('h2', { class: 'project-name' },
            h('a', { href: '/projects/' + encodeURIComponent(p.id), text: p.name })),
          summary),
        list,
        p.members.length ? null : h('p', { class: 'muted', text: 'No collaborators yet.' }));
      el.dataset.projectId = p.id;
      const card = { id: p.id, el, list, summary, members: p.members.map((m) => String(m.user)) };
      cards.push(card);
      grid.append(el);
      refresh(card);
    }
    document.getElementById('main').replaceChildren(
      h('h1', { class: 'page-title', text: 'Projects' }),
      projects.length ? grid : h('p', { class: 'card muted', text: 'No projects yet.' }));
  },
  onPresence: (m) => {
    for (const card of cards)
      if (card.members.includes(m.user))
        refresh(card);
  },
  onSnapshot: () => cards.forEach(refresh),
});

// /users/{id} - a profile: dot, status text, Do Not Disturb, the status
// message and when it clears, last seen, and the person's local time
// (app.js's shared timer keeps the times current).
import { api, h, person, startPage } from '../app.js';

const id = decodeURIComponent(location.pathname.split('/')[2] || '');

startPage({
  active: 'members',
  notFound: 'Person not found',
  load: async () => {
    const user = await api('/api/users/' + encodeURIComponent(id));
    let channels = [];
    try {
      channels = (await api('/api/channels')).channels || [];
    } catch (e) { /* the profile works without them */ }
    return { user, channels };
  },
  render: ({ user, channels }, ctx) => {
    document.title = user.name + ' · presenced';
    const profile = person(user, {
      tag: 'section', variant: 'profile', size: 'xl', lastSeen: true, localTime: true, link: false,
    });
    profile.classList.add('card', 'profile-card');
    // The name (and the DND badge beside it) is the page's heading.
    const title = profile.querySelector('.person-title');
    const heading = h('h1', { class: 'page-title person-title person-name-heading' }, ...title.childNodes);
    title.replaceWith(heading);
    if (ctx.me && String(ctx.me.user) === String(user.user))
      heading.append(h('span', { class: 'badge', text: 'You' }));
    const mine = channels.filter((c) => c.members.some((m) => String(m.user) === String(user.user)));
    document.getElementById('main').replaceChildren(
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
        h('a', { href: '/members', text: 'Members' }), h('span', { 'aria-hidden': 'true', text: ' / ' }),
        h('span', { text: user.name })),
      profile,
      h('section', { class: 'card', 'aria-labelledby': 'ch-h' },
        h('h2', { id: 'ch-h', text: 'Channels' }),
        mine.length
          ? h('ul', { class: 'link-list' }, mine.map((c) => h('li', {},
            h('a', { href: '/channels/' + encodeURIComponent(c.id), text: '# ' + c.name }))))
          : h('p', { class: 'muted', text: 'Not in any channel.' })));
  },
});

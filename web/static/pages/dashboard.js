// / - the dashboard: your status and picker, colleagues online now.
import { api, h, person, rememberApi, startPage, knownMember, knownMembers, sortList } from '../app.js';

const CHOICES = [
  ['ONLINE', 'Online', 'Everyone sees you as Online while you are active.'],
  ['AWAY', 'Away', 'Everyone sees you as Away until you change it.'],
  ['BUSY', 'Busy', 'Everyone sees you as Busy until you change it.'],
  ['OFFLINE', 'Appear offline', 'Everyone sees you as Offline; you still see them.'],
];

let picker, hint, pickerMsg, count, countLabel, onlineList, emptyNote, me;

function setPicker(manual) {
  const v = manual || 'ONLINE';
  if (picker.value !== v)
    picker.value = v;
  hint.textContent = CHOICES.find(([k]) => k === v)[2];
}

function others() {
  return knownMembers().filter((m) => m.user !== me.user);
}

function refreshOnline() {
  const present = others().filter((m) => m.status !== 'OFFLINE');
  count.textContent = String(present.length);
  countLabel.textContent = present.length === 1 ? 'colleague online' : 'colleagues online';
  const want = new Set(present.map((m) => m.user));
  for (const el of [...onlineList.children])
    if (!want.has(el.dataset.userId))
      el.remove();
  const have = new Set([...onlineList.children].map((el) => el.dataset.userId));
  for (const m of present)
    if (!have.has(m.user))
      onlineList.append(person(m, { variant: 'row', size: 'sm' }));
  sortList(onlineList);
  emptyNote.hidden = present.length > 0;
  refreshGroups();
}

const groups = [];  // {el, members: [user ids]} of the channel and project links

function refreshGroups() {
  for (const g of groups) {
    const online = g.members.filter((u) => (knownMember(u) || {}).status !== 'OFFLINE').length;
    g.el.textContent = g.members.length + (g.members.length === 1 ? ' member' : ' members') +
      (online ? ' · ' + online + ' online' : '');
  }
}

function groupLinks(items, base, empty) {
  if (!items.length)
    return h('p', { class: 'muted', text: empty });
  return h('ul', { class: 'link-list' }, items.map((g) => {
    const count = h('span', { class: 'muted small' });
    groups.push({ el: count, members: g.members.map((m) => String(m.user)) });
    return h('li', {},
      h('a', { href: base + encodeURIComponent(g.id), text: (base === '/channels/' ? '# ' : '') + g.name }),
      count);
  }));
}

startPage({
  active: 'dashboard',
  load: async () => {
    const [presence, channels, projects] = await Promise.all([
      api('/api/presence'), api('/api/channels'), api('/api/projects')]);
    return { presence, channels: channels.channels || [], projects: projects.projects || [] };
  },
  render: (data, ctx) => {
    me = ctx.me;
    for (const m of data.presence.members || [])
      rememberApi(m);
    const main = document.getElementById('main');

    picker = h('select', { id: 'status-picker', name: 'status', 'aria-describedby': 'status-hint' },
      CHOICES.map(([v, label]) => h('option', { value: v, text: label })));
    hint = h('p', { id: 'status-hint', class: 'hint' });
    pickerMsg = h('p', { class: 'picker-msg', role: 'status', 'aria-live': 'polite' });
    setPicker(ctx.presence.manual);
    picker.addEventListener('change', async () => {
      const v = picker.value;
      hint.textContent = CHOICES.find(([k]) => k === v)[2];
      pickerMsg.textContent = '';
      pickerMsg.classList.remove('error');
      try {
        await ctx.presence.setStatus(v);
        pickerMsg.textContent = v === 'ONLINE' ? 'Status cleared.' : 'Status set to ' +
          CHOICES.find(([k]) => k === v)[1] + '.';
      } catch (e) {
        pickerMsg.textContent = 'Could not change your status: ' + e.message;
        pickerMsg.classList.add('error');
      }
    });
    ctx.presence.on('manual', setPicker);
    ctx.presence.on('hello', (hello) => setPicker(hello.manual));

    count = h('span', { id: 'online-count', class: 'stat-number' });
    countLabel = h('span', { class: 'stat-label' });
    onlineList = h('ul', { id: 'online-list', class: 'person-list compact', 'aria-label': 'Colleagues online now' });
    emptyNote = h('p', { class: 'muted', text: 'Nobody else is around right now.' });

    main.replaceChildren(
      h('h1', { class: 'page-title', text: 'Hello, ' + me.name.split(/\s+/)[0] }),
      h('div', { class: 'dash-grid' },
        h('section', { class: 'card', 'aria-labelledby': 'you-h' },
          h('h2', { id: 'you-h', text: 'Your status' }),
          person(me, { tag: 'div', variant: 'profile', size: 'lg', link: false }),
          h('div', { class: 'field' },
            h('label', { for: 'status-picker', text: 'Set your status' }), picker),
          hint, pickerMsg),
        h('section', { class: 'card', 'aria-labelledby': 'colleagues-h' },
          h('h2', { id: 'colleagues-h', text: 'Colleagues' }),
          h('p', { class: 'stat' }, count, ' ', countLabel),
          h('p', { class: 'hint', text: 'Counting everyone Online, Away or Busy.' }),
          onlineList, emptyNote),
        h('section', { class: 'card', 'aria-labelledby': 'channels-h' },
          h('h2', { id: 'channels-h' }, h('a', { href: '/channels', text: 'Channels' })),
          groupLinks(data.channels, '/channels/', 'No channels yet.')),
        h('section', { class: 'card', 'aria-labelledby': 'projects-h' },
          h('h2', { id: 'projects-h', text: 'Projects' }),
          groupLinks(data.projects, '/projects/', 'No projects yet.'))));
    refreshOnline();
  },
  onPresence: refreshOnline,
  onSnapshot: refreshOnline,
});

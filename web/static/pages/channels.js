// /channels - every channel with its members' avatars and dots.
import { h } from '../app.js';
import { groupListPage } from './grouplist.js';

groupListPage({
  kind: 'channel',
  title: 'Channels',
  active: 'channels',
  label: (name) => 'Members of #' + name,
  heading: (c) => [h('span', { class: 'hash', 'aria-hidden': 'true', text: '#' }), c.name],
  empty: 'No channels yet.',
  noMembers: 'No members yet.',
});

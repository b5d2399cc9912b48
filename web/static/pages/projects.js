// /projects - every project with its collaborators' avatars and live dots,
// and how many of them are online (as /channels does for channels).
import { groupListPage } from './grouplist.js';

groupListPage({
  kind: 'project',
  title: 'Projects',
  active: 'projects',
  label: (name) => 'Collaborators of ' + name,
  heading: (p) => [p.name],
  empty: 'No projects yet.',
  noMembers: 'No collaborators yet.',
});

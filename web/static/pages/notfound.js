// The 404 page (web/404.html), served by the server for any page it does
// not have. Whoever is signed in gets the usual header and navigation
// (no section current) and a way back to the dashboard; an anonymous
// visitor gets the page without the private navigation, and a way to
// sign in. The page itself says nothing about what exists.
import { api, h, startPage } from '../app.js';

function fill(signedIn) {
  const path = document.getElementById('not-found-path');
  if (path) {
    path.textContent = location.pathname;
    path.parentElement.hidden = false;
  }
  const home = document.getElementById('not-found-home');
  if (home && !signedIn) {
    home.href = '/login';
    home.textContent = 'Sign in';
  }
}

// The header for a visitor without a session: the brand and "Sign in".
function publicHeader() {
  const header = h('header', { class: 'app-header' },
    h('a', { class: 'skip-link', href: '#main', text: 'Skip to content' }),
    h('div', { class: 'header-inner' },
      h('a', { class: 'brand', href: '/' },
        h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'presenced'),
      h('div', { class: 'header-right' },
        h('a', { id: 'sign-in', class: 'btn btn-ghost', href: '/login', text: 'Sign in' }))));
  document.getElementById('app-header').replaceWith(header);
}

let me = null;
try {
  me = await api('/api/me', { redirect: false });
} catch (e) {
  me = null;  // no session (401), or no answer: the page as for anyone
}
if (me) {
  startPage({ active: false, load: async () => null, render: () => fill(true) });
} else {
  publicHeader();
  fill(false);
  document.body.dataset.ready = '1';
}

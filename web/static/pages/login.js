// /login - email + password; errors shown in the form.
const form = document.getElementById('login-form');
const errorBox = document.getElementById('login-error');
const button = form.querySelector('button[type=submit]');

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

function wait(seconds) {
  if (!seconds)
    return 'a little while';
  if (seconds < 90)
    return seconds + (seconds === 1 ? ' second' : ' seconds');
  const m = Math.ceil(seconds / 60);
  return m + ' minutes';
}

// Where to go after signing in: ?next= if it names a page of this origin,
// else the dashboard (no open redirect). It is resolved as the browser
// would (tabs and newlines dropped, a backslash read as "/", "//host" and
// "javascript:" being other origins) and the absolute URL is what we go
// to: a path alone could be "//host" again ("/.//host" resolves to it),
// which no page has anyway.
function nextPage() {
  const next = new URLSearchParams(location.search).get('next');
  if (!next)
    return '/';
  let u;
  try {
    u = new URL(next, location.origin);
  } catch (e) {
    return '/';
  }
  if (u.origin !== location.origin || u.pathname === '/login' ||
      u.pathname.startsWith('//'))
    return '/';
  return u.href;
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  if (!email || !password) {
    showError('Enter your email and your password.');
    (email ? form.elements.password : form.elements.email).focus();
    return;
  }
  showError('');
  button.disabled = true;
  form.setAttribute('aria-busy', 'true');
  const label = button.textContent;
  button.textContent = 'Signing in…';
  try {
    let r;
    try {
      r = await fetch('/api/login', {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-Requested-With': 'presenced' },
        body: JSON.stringify({ email, password }),
      });
    } catch (e) {
      showError('Cannot reach the server. Check your connection and try again.');
      return;
    }
    if (r.ok) {
      await r.json().catch(() => null);  // read it all before leaving
      form.dataset.done = '1';
      button.textContent = 'Signed in';
      location.assign(nextPage());
      return;
    }
    let err = {};
    try {
      err = ((await r.json()) || {}).error || {};
    } catch (e) { /* not JSON */ }
    if (r.status === 401) {
      showError('Wrong email or password.');
      form.elements.password.select();
    } else if (r.status === 429) {
      const s = parseInt(r.headers.get('Retry-After'), 10);
      showError('Too many sign-in attempts. Try again in ' + wait(Number.isFinite(s) && s > 0 ? s : 0) + '.');
    } else if (r.status === 400) {
      showError(err.message ? 'Check your email and password: ' + err.message : 'Check your email and password.');
    } else {
      showError('Sign-in failed (' + (err.message || 'HTTP ' + r.status) + '). Try again.');
    }
  } finally {
    if (!form.dataset.done) {
      button.disabled = false;
      button.textContent = label;
    }
    form.removeAttribute('aria-busy');
  }
});

form.elements.email.focus();
document.body.dataset.ready = '1';

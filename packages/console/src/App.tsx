/** Sign-in gate, layout (header, navigation) and the console's routes. */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { api, ApiError, can, setUnauthenticatedHandler, storedToken, storeToken, type AdminTokenInfo } from './api';
import { startLive } from './live';
import { Link, navigate, useLocation } from './router';
import { LiveHub, SessionContext, useLiveStatus, useSession, type Session } from './session';
import { Loading } from './components/ui';
import { SignIn } from './pages/SignIn';
import { Dashboard } from './pages/Dashboard';
import { Licenses } from './pages/Licenses';
import { LicenseForm } from './pages/LicenseForm';
import { LicenseDetail } from './pages/LicenseDetail';
import { Products } from './pages/Products';
import { Reclaim } from './pages/Reclaim';
import { UsagePage } from './pages/Usage';
import { Audit } from './pages/Audit';
import { Tokens } from './pages/Tokens';
import { Groups } from './pages/Groups';
import { LicenseFile } from './pages/LicenseFile';

export function App() {
  const [token, setToken] = useState<string | null>(() => storedToken());
  const [me, setMe] = useState<AdminTokenInfo | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [checking, setChecking] = useState(() => storedToken() !== null);

  const signOut = useCallback((reason?: string) => {
    storeToken(null);
    setToken(null);
    setMe(null);
    setNotice(reason ?? null);
  }, []);

  // A token kept from earlier in this tab: check that it still works before showing anything.
  useEffect(() => {
    const t = storedToken();
    if (!t) return;
    api.whoami(t).then(
      (info) => {
        setMe(info);
        setChecking(false);
      },
      (e: unknown) => {
        setChecking(false);
        if (e instanceof ApiError && e.status === 401) signOut('Your admin token is no longer accepted. Sign in again.');
        else signOut(e instanceof Error ? e.message : String(e));
      },
    );
  }, [signOut]);

  useEffect(() => {
    setUnauthenticatedHandler(() => signOut('The server no longer accepts your admin token (UNAUTHENTICATED). Sign in again.'));
    return () => setUnauthenticatedHandler(null);
  }, [signOut]);

  const onSignedIn = (t: string, info: AdminTokenInfo) => {
    storeToken(t);
    setToken(t);
    setMe(info);
    setNotice(null);
  };

  if (checking) return <Loading label="Checking your session…" />;
  if (!token || !me) return <SignIn onSignedIn={onSignedIn} notice={notice} />;
  return <SignedIn token={token} me={me} signOut={signOut} />;
}

function SignedIn({ token, me, signOut }: { token: string; me: AdminTokenInfo; signOut: (reason?: string) => void }) {
  const hub = useMemo(() => new LiveHub(), []);
  useEffect(
    () =>
      startLive(
        token,
        (e) => hub.emit(e),
        (s) => hub.setStatus(s),
        () => signOut('The server no longer accepts your admin token (UNAUTHENTICATED). Sign in again.'),
      ),
    [token, hub, signOut],
  );
  // The server's role decides which catalogue actions exist: an on-premise server refuses them (ENTITLEMENT_MANAGED).
  const [onPrem, setOnPrem] = useState<boolean | null>(null);
  useEffect(() => {
    api.entitlements().then(
      (e) => setOnPrem(e.mode === 'on-prem'),
      () => setOnPrem(false),
    );
  }, [token]);
  const session: Session = useMemo(
    () => ({ token, me, signOut, can: (needed) => can(me.role, needed), live: hub, onPrem: onPrem ?? false }),
    [token, me, signOut, hub, onPrem],
  );
  if (onPrem === null) return <Loading label="Loading…" />;
  return (
    <SessionContext.Provider value={session}>
      <Layout />
    </SessionContext.Provider>
  );
}

const NAV: [string, string][] = [
  ['/', 'Dashboard'],
  ['/licenses', 'Licenses'],
  ['/products', 'Products'],
  ['/reclamation', 'Reclamation'],
  ['/usage', 'Usage'],
  ['/audit', 'Audit log'],
  ['/groups', 'Groups'],
  ['/tokens', 'Tokens'],
];

function Layout() {
  const { path } = useLocation();
  const { me, signOut, onPrem } = useSession();
  const nav: [string, string][] = onPrem ? [...NAV, ['/license-file', 'License file']] : NAV;
  const first = useRef(true);
  // After a client-side navigation, move focus to the new page's heading (screen readers, keyboard).
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const h = document.getElementById('page-h1');
    h?.focus();
  }, [path]);
  const section = '/' + (path.split('/')[1] ?? '');
  return (
    <div className="app">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          <span className="brand-mark" aria-hidden="true">
            f
          </span>
          floatd
        </Link>
        <nav aria-label="Main" className="nav">
          <ul>
            {nav.map(([to, label]) => (
              <li key={to}>
                <Link to={to} aria-current={section === to ? 'page' : undefined}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <LiveIndicator />
          <span className="who-name" title={`token ${me.id}`}>
            {me.name} <span className={`badge badge-role`}>{me.role}</span>
          </span>
          <button type="button" className="btn btn-small" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" className="main">
        <Routes path={path} />
      </main>
    </div>
  );
}

function LiveIndicator() {
  const s = useLiveStatus();
  const text = s === 'live' ? 'Live' : s === 'connecting' ? 'Connecting…' : s === 'reconnecting' ? 'Reconnecting…' : 'Offline';
  return (
    <span className={`live live-${s}`} role="status" title="Live updates from the server">
      <span className="live-dot" aria-hidden="true" />
      {text}
    </span>
  );
}

/** Replaces the address with `to` (no history entry for the old one). */
function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

function Routes({ path }: { path: string }) {
  const parts = path.split('/').filter(Boolean);
  const [a, b, c] = parts;
  if (!a) return <Dashboard />;
  // `/keys` was the first name of these pages: old links and bookmarks land on the new ones.
  if (a === 'keys') return <Redirect to={`/licenses${path.slice('/keys'.length)}${location.search}`} />;
  if (a === 'licenses' && !b) return <Licenses />;
  if (a === 'licenses' && b === 'new' && !c) return <LicenseForm />;
  if (a === 'licenses' && b && c === 'edit') return <LicenseForm licenseId={b} />;
  if (a === 'licenses' && b && !c) return <LicenseDetail licenseId={b} />;
  if (a === 'products' && !b) return <Products />;
  if (a === 'reclamation' && !b) return <Reclaim />;
  if (a === 'usage' && !b) return <UsagePage />;
  if (a === 'audit' && !b) return <Audit />;
  if (a === 'tokens' && !b) return <Tokens />;
  if (a === 'groups' && !b) return <Groups />;
  if (a === 'license-file' && !b) return <LicenseFile />;
  return (
    <section>
      <h1 id="page-h1" tabIndex={-1}>
        Page not found
      </h1>
      <p>
        There is no console page at <code>{path}</code>.{' '}
        <button type="button" className="btn-link" onClick={() => navigate('/')}>
          Go to the dashboard
        </button>
      </p>
    </section>
  );
}

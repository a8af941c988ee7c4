/** Sign-in gate, layout (header, navigation) and the console's routes. */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { api, ApiError, can, setCustomerScope, setUnauthenticatedHandler, storedToken, storeToken, type AdminTokenInfo } from './api';
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
import { CustomerPage, Customers } from './pages/Customers';
import { Webhooks } from './pages/Webhooks';

export function App() {
  const [token, setToken] = useState<string | null>(() => storedToken());
  const [me, setMe] = useState<AdminTokenInfo | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [checking, setChecking] = useState(() => storedToken() !== null);
  /** Why the session check waits (the server was busy or unreachable): the kept token is not given up for that. */
  const [checkNote, setCheckNote] = useState<string | null>(null);

  const signOut = useCallback((reason?: string) => {
    storeToken(null);
    setToken(null);
    setMe(null);
    setNotice(reason ?? null);
  }, []);

  // A token kept from earlier in this tab: check that it still works before showing anything. Only a refusal of the
  // token forgets it; a busy (429, 503) or unreachable server is asked again when it says (Retry-After), or in 2 s.
  useEffect(() => {
    const t = storedToken();
    if (!t) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const check = () =>
      api.whoami(t).then(
        (info) => {
          if (stopped || storedToken() !== t) return;
          setMe(info);
          setCheckNote(null);
          setChecking(false);
        },
        (e: unknown) => {
          // Stopped, or given up by "Sign in again" meanwhile.
          if (stopped || storedToken() !== t) return;
          if (e instanceof ApiError && (e.status === 0 || e.status === 429 || e.status === 503)) {
            const wait = typeof e.details.retryAfterSeconds === 'number' ? Math.min(60, Math.max(1, e.details.retryAfterSeconds)) : 2;
            setCheckNote(`${e.message} (${e.code}). Trying again in ${wait} s…`);
            timer = setTimeout(check, wait * 1000);
            return;
          }
          setChecking(false);
          if (e instanceof ApiError && e.status === 401) signOut('Your admin token is no longer accepted. Sign in again.');
          else signOut(e instanceof Error ? e.message : String(e));
        },
      );
    void check();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
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

  if (checking)
    return (
      <>
        <Loading label="Checking your session…" />
        {checkNote && (
          <p className="alert alert-info" role="status">
            {checkNote}{' '}
            <button type="button" className="btn-link" onClick={() => (setChecking(false), signOut())}>
              Sign in again
            </button>
          </p>
        )}
      </>
    );
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
  // A customer's token: its customer's name, for the header (its own customer page is a route it may read).
  const [customerName, setCustomerName] = useState<string | null>(null);
  useEffect(() => {
    setCustomerScope(me.customerId);
    // A customer's token may not read the server's role (CUSTOMER_SCOPE): it sees its licenses, never the catalogue.
    if (me.customerId) {
      const id = me.customerId;
      api.customer(id).then(
        (d) => setCustomerName(d.customer.name),
        () => setCustomerName(id),
      );
      setOnPrem(false);
      return;
    }
    api.entitlements().then(
      (e) => setOnPrem(e.mode === 'on-prem'),
      () => setOnPrem(false),
    );
  }, [token, me.customerId]);
  const session: Session = useMemo(
    () => ({
      token,
      me,
      signOut,
      // A customer's token may do no admin-role route at all (the catalogue, tokens, webhooks are the vendor's): its admin
      // role counts as operator here, so no page offers what the server would refuse with CUSTOMER_SCOPE.
      can: (needed) => can(me.role, needed) && !(me.customerId && needed === 'admin'),
      live: hub,
      onPrem: onPrem ?? false,
      customerName,
    }),
    [token, me, signOut, hub, onPrem, customerName],
  );
  if (onPrem === null || (me.customerId && customerName === null)) return <Loading label="Loading…" />;
  return (
    <SessionContext.Provider value={session}>
      <Layout />
    </SessionContext.Provider>
  );
}

const NAV: [string, string][] = [
  ['/', 'Dashboard'],
  ['/licenses', 'Licenses'],
  ['/customers', 'Customers'],
  ['/products', 'Products'],
  ['/reclamation', 'Reclamation'],
  ['/usage', 'Usage'],
  ['/audit', 'Audit log'],
  ['/groups', 'Groups'],
  ['/webhooks', 'Webhooks'],
  ['/tokens', 'Tokens'],
];
/**
 * The sections a customer's own administrator reaches (the server refuses the rest with CUSTOMER_SCOPE): its
 * licenses, its own customer page, their usage and audit log, and reclamation (a sweep of its own licenses).
 */
const CUSTOMER_SECTIONS = new Set(['', 'licenses', 'customers', 'reclamation', 'usage', 'audit']);
/** The vendor's own sections: a customer's token gets no navigation entry and, by address, a page that says so. */
const VENDOR_SECTIONS = new Set(['products', 'tokens', 'groups', 'webhooks', 'license-file']);

function Layout() {
  const { path } = useLocation();
  const { me, signOut, onPrem, customerName } = useSession();
  const nav: [string, string][] = me.customerId
    ? NAV.filter(([to]) => CUSTOMER_SECTIONS.has(to.slice(1))).map(([to, label]): [string, string] =>
        to === '/customers' ? [`/customers/${me.customerId}`, 'Customer'] : [to, label],
      )
    : onPrem
      ? [...NAV, ['/license-file', 'License file']]
      : NAV;
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
                <Link to={to} aria-current={section === `/${to.split('/')[1] ?? ''}` ? 'page' : undefined}>
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
        {me.customerId && (
          <p className="scope-note" data-testid="customer-scope">
            Customer <strong>{customerName}</strong>: this token reaches this customer's licenses only.
          </p>
        )}
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

/** What a customer's token shows for a vendor page's address, without asking the server. */
function VendorOnly({ path }: { path: string }) {
  const { customerName } = useSession();
  useEffect(() => {
    document.title = 'Not available · floatd console';
  }, []);
  return (
    <section>
      <h1 id="page-h1" tabIndex={-1}>
        Not available with a customer's token
      </h1>
      <p>
        <code>{path}</code> is a page of the vendor's. This token reaches the licenses of {customerName} only.{' '}
        <Link to="/licenses">Go to the licenses</Link>
      </p>
    </section>
  );
}

/** Replaces the address with `to` (no history entry for the old one). */
function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

function Routes({ path }: { path: string }) {
  const { me } = useSession();
  const parts = path.split('/').filter(Boolean);
  const [a, b, c] = parts;
  if (!a) return <Dashboard />;
  // `/keys` was the first name of these pages: old links and bookmarks land on the new ones.
  if (a === 'keys') return <Redirect to={`/licenses${path.slice('/keys'.length)}${location.search}`} />;
  if (me.customerId) {
    // A customer's token: its own customer page stands for the list; a vendor page (or form) is not opened at all,
    // since every request it would send is one the server refuses (CUSTOMER_SCOPE).
    if (a === 'customers' && !b) return <Redirect to={`/customers/${me.customerId}`} />;
    if (VENDOR_SECTIONS.has(a) || (a === 'licenses' && (b === 'new' || c === 'edit'))) return <VendorOnly path={path} />;
  }
  if (a === 'licenses' && !b) return <Licenses />;
  if (a === 'licenses' && b === 'new' && !c) return <LicenseForm />;
  if (a === 'licenses' && b && c === 'edit') return <LicenseForm licenseId={b} />;
  if (a === 'licenses' && b && !c) return <LicenseDetail licenseId={b} />;
  if (a === 'customers' && !b) return <Customers />;
  if (a === 'customers' && b && !c) return <CustomerPage customerId={b} />;
  if (a === 'webhooks' && !b) return <Webhooks />;
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

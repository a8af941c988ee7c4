import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, ApiError, type AdminTokenInfo } from '../api';
import { ErrorBox } from '../components/ui';

export function SignIn({ onSignedIn, notice }: { onSignedIn: (token: string, me: AdminTokenInfo) => void; notice: string | null }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    document.title = 'Sign in · floatd console';
    input.current?.focus();
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const t = token.trim();
    setError(null);
    if (!t) {
      setError(new Error('Enter an admin token.'));
      input.current?.focus();
      return;
    }
    setBusy(true);
    try {
      const me = await api.whoami(t);
      onSignedIn(t, me);
    } catch (err) {
      setError(signInRefusal(err));
      setBusy(false);
      input.current?.select();
    }
  };

  return (
    <main className="signin">
      <form className="card signin-card" onSubmit={(e) => void submit(e)} noValidate aria-labelledby="signin-title">
        <div className="signin-brand" aria-hidden="true">
          <span className="brand-mark">f</span> floatd
        </div>
        <h1 id="signin-title">Sign in to the console</h1>
        {notice && (
          <p className="alert alert-info" role="status">
            {notice}
          </p>
        )}
        <div className="field">
          <label htmlFor="token">Admin token</label>
          <input
            ref={input}
            id="token"
            name="token"
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={token}
            onChange={(e) => setToken(e.target.value)}
            aria-describedby="token-hint"
            aria-invalid={error ? true : undefined}
          />
          <p className="field-hint" id="token-hint">
            The first admin token is in <code>&lt;data-dir&gt;/admin-token</code> (for <code>npm start</code>:{' '}
            <code>./data/admin-token</code>). It is kept in this tab only, until you sign out or close it.
          </p>
        </div>
        <ErrorBox error={error} title="Sign-in refused" />
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

/** The server's answer in words a person signing in can act on (the code and request id stay visible). */
export function signInRefusal(err: unknown): unknown {
  if (!(err instanceof ApiError)) return err;
  const say = (message: string) => new ApiError(err.status, err.code, message, err.requestId, err.details);
  if (err.status === 401) {
    return say(
      'This token is not accepted: it is mistyped, incomplete or revoked. Paste the whole token (it starts with fdt_), as printed at the first start or given to you by an administrator.',
    );
  }
  if (err.status === 429) return say('Too many refused sign-ins from this address. Wait a minute, then try again.');
  return err;
}

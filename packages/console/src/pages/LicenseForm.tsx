import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { api, ApiError, fieldOf, type CreateLicenseBody, type License, type Product, type UpdateLicenseBody } from '../api';
import { fmtDuration, isoToLocalInput, localInputToIso } from '../format';
import { setFlash } from '../flash';
import { Link, navigate, useLocation } from '../router';
import { useCan, useLoad, useSession, useTitle } from '../session';
import { ErrorBox, Field, Loading, PageTitle } from '../components/ui';

type Model = License['model'];
type Counting = License['counting'];

interface FormState {
  productId: string;
  seats: string;
  model: Model;
  expiresAt: string;
  trialDays: string;
  noTtl: boolean;
  leaseTtlSeconds: string;
  heartbeatIntervalSeconds: string;
  maxOfflineSeconds: string;
  maxOfflineSeats: string;
  maxInstancesPerDevice: string;
  counting: Counting;
  metadata: string;
}

const EMPTY: FormState = {
  productId: '',
  seats: '',
  model: 'permanent',
  expiresAt: '',
  trialDays: '',
  noTtl: false,
  leaseTtlSeconds: '900',
  heartbeatIntervalSeconds: '',
  maxOfflineSeconds: '0',
  maxOfflineSeats: '',
  maxInstancesPerDevice: '10',
  counting: 'per-device',
  metadata: '{}',
};

function fromLicense(l: License): FormState {
  return {
    productId: l.productId,
    seats: String(l.seats),
    model: l.model,
    expiresAt: isoToLocalInput(l.expiresAt),
    trialDays: l.trialDays === null ? '' : String(l.trialDays),
    noTtl: l.leaseTtlSeconds === null,
    leaseTtlSeconds: l.leaseTtlSeconds === null ? '900' : String(l.leaseTtlSeconds),
    heartbeatIntervalSeconds: String(l.heartbeatIntervalSeconds),
    maxOfflineSeconds: String(l.maxOfflineSeconds),
    maxOfflineSeats: l.maxOfflineSeats === null ? '' : String(l.maxOfflineSeats),
    maxInstancesPerDevice: String(l.maxInstancesPerDevice),
    counting: l.counting,
    metadata: JSON.stringify(l.metadata, null, 2),
  };
}

/** A number as typed; text that is not a number goes to the server as it is, so its validation message shows. */
const num = (s: string): number | string | undefined => {
  const t = s.trim();
  if (t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
};

const POLICY_FIELDS = [
  'seats',
  'model',
  'expiresAt',
  'trialDays',
  'leaseTtlSeconds',
  'heartbeatIntervalSeconds',
  'maxOfflineSeconds',
  'maxOfflineSeats',
  'maxInstancesPerDevice',
  'counting',
  'metadata',
] as const;

/** The request body the form stands for (every policy field; nullable ones as null when empty). */
function toBody(f: FormState): Record<string, unknown> {
  return {
    seats: num(f.seats),
    model: f.model,
    expiresAt: f.model === 'subscription' ? (localInputToIso(f.expiresAt) ?? (f.expiresAt || null)) : null,
    trialDays: f.model === 'trial' ? (num(f.trialDays) ?? null) : null,
    leaseTtlSeconds: f.noTtl ? null : num(f.leaseTtlSeconds),
    heartbeatIntervalSeconds: num(f.heartbeatIntervalSeconds),
    maxOfflineSeconds: num(f.maxOfflineSeconds),
    maxOfflineSeats: num(f.maxOfflineSeats) ?? null,
    maxInstancesPerDevice: num(f.maxInstancesPerDevice),
    counting: f.counting,
    metadata: JSON.parse(f.metadata.trim() || '{}') as unknown,
  };
}

/** Which input a server error is about: the schema's `field`, a missing property, or a field the policy message names. */
function errorField(e: unknown): string | null {
  if (!(e instanceof ApiError)) return null;
  const m = /required property '([A-Za-z]+)'/.exec(e.message);
  if (m?.[1]) return m[1];
  const field = fieldOf(e);
  if (field) return field;
  if (e.code === 'INVALID_POLICY') {
    for (const f of ['heartbeatIntervalSeconds', 'expiresAt', 'trialDays', 'leaseTtlSeconds']) if (e.message.includes(f)) return f;
  }
  return null;
}

export function LicenseForm({ licenseId }: { licenseId?: string }) {
  const editing = licenseId !== undefined;
  useTitle(editing ? 'Edit license' : 'New license');
  const { onPrem } = useSession(); // on-premise the license file owns the policies (ENTITLEMENT_MANAGED)
  const isAdmin = useCan('admin') && !onPrem;
  const { query } = useLocation();
  const { data, error: loadError } = useLoad(async () => {
    const [products, license] = await Promise.all([api.products(), licenseId ? api.license(licenseId) : Promise.resolve(null)]);
    return { products: products.items, license };
  }, [licenseId]);

  const [form, setForm] = useState<FormState>(EMPTY);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!data) return;
    if (data.license) setForm(fromLicense(data.license));
    else setForm((f) => ({ ...f, productId: query.get('productId') ?? f.productId ?? data.products[0]?.id ?? '' }));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [data]);
  useEffect(() => {
    if (data && !data.license && !form.productId && data.products[0]) setForm((f) => ({ ...f, productId: data.products[0]?.id ?? '' }));
  }, [data, form.productId]);

  const set = <K extends keyof FormState>(k: K, v: FormState[K]) => setForm((f) => ({ ...f, [k]: v }));
  const bad = errorField(error);
  const fieldError = (name: string) => (bad === name && error instanceof ApiError ? `${error.message} (${error.code})` : null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    let body: Record<string, unknown>;
    try {
      body = toBody(form);
    } catch {
      setError(
        new ApiError(0, 'INVALID_JSON', 'Metadata must be a JSON object, for example {"customer": "ACME"}.', undefined, {
          field: 'body/metadata',
        }),
      );
      return;
    }
    setBusy(true);
    try {
      if (editing && data?.license) {
        const before = toBody(fromLicense(data.license));
        const patch: Record<string, unknown> = {};
        for (const k of POLICY_FIELDS) if (JSON.stringify(body[k]) !== JSON.stringify(before[k])) patch[k] = body[k];
        // Changing the model needs the matching expiresAt/trialDays in the same request.
        if ('model' in patch) {
          patch.expiresAt = body.expiresAt;
          patch.trialDays = body.trialDays;
        }
        for (const k of Object.keys(patch)) if (patch[k] === undefined) delete patch[k];
        if (Object.keys(patch).length === 0) {
          setBusy(false);
          navigate(`/licenses/${data.license.id}`);
          return;
        }
        // What the form holds goes as typed (a bad value is the server's VALIDATION_FAILED, shown at its field).
        const l = await api.updateLicense(data.license.id, patch as UpdateLicenseBody);
        setFlash('License saved.');
        navigate(`/licenses/${l.id}`);
      } else {
        const create: Record<string, unknown> = { productId: form.productId || undefined };
        for (const [k, v] of Object.entries(body)) if (v !== undefined && v !== null) create[k] = v;
        if (form.noTtl) create.leaseTtlSeconds = null;
        const l = await api.createLicense(create as CreateLicenseBody);
        setFlash(`License ${l.key} created. Give its key to the customer.`);
        navigate(`/licenses/${l.id}`);
      }
    } catch (err) {
      setError(err);
      setBusy(false);
      requestAnimationFrame(() => document.querySelector<HTMLElement>('[aria-invalid="true"], .form-error')?.focus());
    }
  };

  const ttl = form.noTtl ? null : Number(form.leaseTtlSeconds);
  const defaultHb = ttl === null || !Number.isFinite(ttl) ? 300 : Math.floor(ttl / 3);
  const productName = useMemo(() => data?.products.find((p) => p.id === form.productId)?.name, [data, form.productId]);

  if (!isAdmin)
    return (
      <>
        <PageTitle>{editing ? 'Edit license' : 'New license'}</PageTitle>
        <p className="alert alert-info">
          {onPrem
            ? 'On this on-premise server the licenses and their policies come from the vendor’s license file: load a new file on the License file page to change them.'
            : 'Creating and editing licenses needs the admin role.'}
        </p>
      </>
    );
  if (!data) return loadError ? <ErrorBox error={loadError} /> : <Loading />;
  if (!editing && data.products.length === 0)
    return (
      <>
        <PageTitle>New license</PageTitle>
        <p className="alert alert-info">
          A license belongs to a product, and there is none yet. <Link to="/products">Create a product first.</Link>
        </p>
      </>
    );

  return (
    <>
      <PageTitle>{editing ? `Edit license ${data.license?.key ?? ''}` : 'New license'}</PageTitle>
      {editing && data.license && (
        <p className="lead">
          Changes apply from the next checkout or heartbeat; seats already held keep their current expiry until their next heartbeat.
        </p>
      )}
      <form className="card form" onSubmit={(e) => void submit(e)} noValidate aria-label={editing ? 'Edit license' : 'New license'}>
        {error !== null && (
          <div className="form-error" tabIndex={-1}>
            <ErrorBox error={error} title={editing ? 'The license was not saved' : 'The license was not created'} />
          </div>
        )}
        <fieldset>
          <legend>Seats</legend>
          <div className="grid">
            {editing ? (
              <div className="field">
                <span className="label">Product</span>
                <p className="static">{productName ?? form.productId}</p>
              </div>
            ) : (
              <Field label="Product" error={fieldError('productId')}>
                {(p) => (
                  <select {...p} value={form.productId} onChange={(e) => set('productId', e.target.value)}>
                    {data.products.map((pr: Product) => (
                      <option key={pr.id} value={pr.id}>
                        {pr.name}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
            )}
            <Field label="Seats" error={fieldError('seats')} hint="How many users may run the application at once (1–1,000,000).">
              {(p) => (
                <input
                  {...p}
                  name="seats"
                  type="number"
                  inputMode="numeric"
                  value={form.seats}
                  onChange={(e) => set('seats', e.target.value)}
                />
              )}
            </Field>
          </div>
          <div className="grid">
            <Radio
              legend="Counting"
              name="counting"
              value={form.counting}
              onChange={(v) => set('counting', v as Counting)}
              options={[
                ['per-device', 'Per device', 'one seat per computer, shared by its running copies'],
                ['per-instance', 'Per instance', 'one seat per running copy'],
              ]}
              error={fieldError('counting')}
            />
            <Field
              label="Max instances per device"
              error={fieldError('maxInstancesPerDevice')}
              hint="Running copies allowed on one computer (1–10,000)."
            >
              {(p) => (
                <input
                  {...p}
                  name="maxInstancesPerDevice"
                  type="number"
                  inputMode="numeric"
                  value={form.maxInstancesPerDevice}
                  onChange={(e) => set('maxInstancesPerDevice', e.target.value)}
                />
              )}
            </Field>
          </div>
        </fieldset>

        <fieldset>
          <legend>Model</legend>
          <Radio
            legend="License model"
            name="model"
            value={form.model}
            onChange={(v) => set('model', v as Model)}
            options={[
              ['permanent', 'Permanent', 'never stops granting'],
              ['subscription', 'Subscription', 'stops at an end date'],
              ['trial', 'Trial', 'stops a number of days after the first checkout'],
            ]}
            error={fieldError('model')}
          />
          {form.model === 'subscription' && (
            <Field label="Subscription ends at (your local time)" error={fieldError('expiresAt')}>
              {(p) => (
                <input
                  {...p}
                  name="expiresAt"
                  type="datetime-local"
                  value={form.expiresAt}
                  onChange={(e) => set('expiresAt', e.target.value)}
                />
              )}
            </Field>
          )}
          {form.model === 'trial' && (
            <Field label="Trial length in days" error={fieldError('trialDays')} hint="1–3650, counted from the first checkout.">
              {(p) => (
                <input
                  {...p}
                  name="trialDays"
                  type="number"
                  inputMode="numeric"
                  value={form.trialDays}
                  onChange={(e) => set('trialDays', e.target.value)}
                />
              )}
            </Field>
          )}
        </fieldset>

        <fieldset>
          <legend>Leases and reclamation</legend>
          <div className="grid">
            <div>
              <Field
                label="Lease TTL (seconds)"
                error={fieldError('leaseTtlSeconds')}
                hint={
                  form.noTtl
                    ? 'No TTL: a seat is held until check-in or release; reclamation never frees it.'
                    : `${fmtDuration(Number(form.leaseTtlSeconds) || 0)} without a heartbeat, then the seat is reclaimed (10 s minimum).`
                }
              >
                {(p) => (
                  <input
                    {...p}
                    name="leaseTtlSeconds"
                    type="number"
                    inputMode="numeric"
                    value={form.leaseTtlSeconds}
                    disabled={form.noTtl}
                    onChange={(e) => set('leaseTtlSeconds', e.target.value)}
                  />
                )}
              </Field>
              <label className="check">
                <input type="checkbox" checked={form.noTtl} onChange={(e) => set('noTtl', e.target.checked)} />
                <span>No TTL (never reclaimed)</span>
              </label>
            </div>
            <Field
              label="Heartbeat interval (seconds)"
              error={fieldError('heartbeatIntervalSeconds')}
              hint={`How often clients renew. Must be shorter than the TTL. Empty: ${fmtDuration(defaultHb)}.`}
            >
              {(p) => (
                <input
                  {...p}
                  name="heartbeatIntervalSeconds"
                  type="number"
                  inputMode="numeric"
                  value={form.heartbeatIntervalSeconds}
                  placeholder={String(defaultHb)}
                  onChange={(e) => set('heartbeatIntervalSeconds', e.target.value)}
                />
              )}
            </Field>
          </div>
        </fieldset>

        <fieldset>
          <legend>Offline use</legend>
          <div className="grid">
            <Field
              label="Longest offline checkout (seconds)"
              error={fieldError('maxOfflineSeconds')}
              hint={
                Number(form.maxOfflineSeconds) > 0 ? `Up to ${fmtDuration(Number(form.maxOfflineSeconds))}.` : '0 forbids offline checkout.'
              }
            >
              {(p) => (
                <input
                  {...p}
                  name="maxOfflineSeconds"
                  type="number"
                  inputMode="numeric"
                  value={form.maxOfflineSeconds}
                  onChange={(e) => set('maxOfflineSeconds', e.target.value)}
                />
              )}
            </Field>
            <Field label="Max seats offline at once" error={fieldError('maxOfflineSeats')} hint="Empty: no cap below the seat count.">
              {(p) => (
                <input
                  {...p}
                  name="maxOfflineSeats"
                  type="number"
                  inputMode="numeric"
                  value={form.maxOfflineSeats}
                  onChange={(e) => set('maxOfflineSeats', e.target.value)}
                />
              )}
            </Field>
          </div>
        </fieldset>

        <fieldset>
          <legend>Metadata</legend>
          <Field
            label="Metadata (JSON object)"
            error={fieldError('metadata')}
            hint='Free-form, for example {"customer": "ACME", "order": "PO-1234"}.'
          >
            {(p) => (
              <textarea
                {...p}
                name="metadata"
                rows={3}
                value={form.metadata}
                onChange={(e) => set('metadata', e.target.value)}
                spellCheck={false}
              />
            )}
          </Field>
        </fieldset>

        <div className="actions">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? 'Saving…' : editing ? 'Save changes' : 'Create license'}
          </button>
          <Link to={editing && licenseId ? `/licenses/${licenseId}` : '/licenses'} className="btn">
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}

function Radio({
  legend,
  name,
  value,
  options,
  onChange,
  error,
}: {
  legend: string;
  name: string;
  value: string;
  options: [string, string, string][];
  onChange: (v: string) => void;
  error: string | null;
}): ReactNode {
  return (
    <fieldset className={`radio-group${error ? ' field-invalid' : ''}`} aria-invalid={error ? true : undefined}>
      <legend className="label">{legend}</legend>
      {options.map(([v, label, hint]) => (
        <label key={v} className="check">
          <input type="radio" name={name} value={v} checked={value === v} onChange={() => onChange(v)} />
          <span>
            {label} <span className="muted">— {hint}</span>
          </span>
        </label>
      ))}
      {error && <p className="field-error">{error}</p>}
    </fieldset>
  );
}

import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import {
  api,
  ApiError,
  DEFAULT_CUSTOMER,
  fieldOf,
  type CreateLicenseBody,
  type License,
  type Product,
  type UpdateLicenseBody,
} from '../api';
import { fmtDuration, isoToLocalInput, localInputToIso } from '../format';
import { setFlash } from '../flash';
import { Link, navigate, useLocation } from '../router';
import { useCan, useLoad, useSession, useTitle } from '../session';
import { ErrorBox, Field, Loading, PageTitle } from '../components/ui';

type Model = License['model'];
type SharingRule = License['sharing'];
type ShareAttr = SharingRule['by'][number];
/** The sharing rule as the form offers it: the two classic modes, a site license, or a mix of attributes. */
type ShareMode = 'device' | 'instance' | 'site' | 'custom';
const MIXABLE: [ShareAttr, string][] = [
  ['device', 'device (the computer)'],
  ['user', 'user name'],
  ['host', 'host name'],
  ['display', 'display'],
  ['key', 'share key (set by the application)'],
];

interface FormState {
  productId: string;
  /** '' until the customers are read: the built-in customer */
  customerId: string;
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
  shareMode: ShareMode;
  shareAttrs: ShareAttr[];
  shareCap: string;
  clonePolicy: License['clonePolicy'];
  vmPolicy: License['vmPolicy'];
  lingerSeconds: string;
  overdraftSeats: string;
  /** the access policy, one entry a line: principals; `principal=number` for maxima and reservations; allow empty = everyone */
  allow: string;
  deny: string;
  limits: string;
  reservations: string;
  /** feature pools, one `name=seats` a line */
  features: string;
  metadata: string;
}

const EMPTY: FormState = {
  productId: '',
  customerId: '',
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
  shareMode: 'device',
  shareAttrs: ['user'],
  shareCap: '',
  clonePolicy: 'separate',
  vmPolicy: 'allow',
  lingerSeconds: '0',
  overdraftSeats: '0',
  allow: '',
  deny: '',
  limits: '',
  reservations: '',
  features: '',
  metadata: '{}',
};

const lines = (t: string) =>
  t
    .split('\n')
    .map((x) => x.trim())
    .filter(Boolean);
/** `group:cad=2` lines → entries; a line without `=n` goes as it is (the server's message says what is wrong). */
function counted<K extends string>(t: string, key: K): ({ principal: string } & Record<K, number | string>)[] {
  return lines(t).map((line) => {
    const eq = line.lastIndexOf('=');
    const n = eq < 0 ? Number.NaN : Number(line.slice(eq + 1));
    return { principal: eq < 0 ? line : line.slice(0, eq).trim(), [key]: Number.isFinite(n) ? n : line.slice(eq + 1) } as {
      principal: string;
    } & Record<K, number | string>;
  });
}
function accessOf(f: FormState): License['access'] {
  return {
    allow: lines(f.allow).length ? lines(f.allow) : null,
    deny: lines(f.deny),
    limits: counted(f.limits, 'max') as License['access']['limits'],
    reservations: counted(f.reservations, 'seats') as License['access']['reservations'],
  };
}

/**
 * `render=5 [instance] [ttl=120]` lines → feature pools (the CLI's `--feature` syntax); what does not parse goes as it
 * is (the server says what is wrong).
 */
function featuresOf(f: FormState): License['features'] {
  return lines(f.features).map((line) => {
    const [head = '', ...opts] = line.split(/\s+/);
    const eq = head.indexOf('=');
    const n = eq < 0 ? Number.NaN : Number(head.slice(eq + 1));
    const pool: Record<string, unknown> = { name: eq < 0 ? head : head.slice(0, eq), seats: Number.isFinite(n) ? n : head.slice(eq + 1) };
    const access = () =>
      (pool.access ??= { allow: null, deny: [], limits: [], reservations: [] }) as {
        allow: string[] | null;
        deny: string[];
        limits: Record<string, unknown>[];
        reservations: Record<string, unknown>[];
      };
    const counted = (v: string, key: string) => {
      const eq = v.lastIndexOf('=');
      const n = Number(v.slice(eq + 1));
      return { principal: eq < 0 ? v : v.slice(0, eq), [key]: Number.isFinite(n) && eq >= 0 ? n : v.slice(eq + 1) };
    };
    for (const o of opts) {
      if (o === 'instance' || o === 'seat') pool.counting = o;
      else if (o.startsWith('ttl=')) pool.leaseTtlSeconds = Number(o.slice(4));
      else if (o.startsWith('allow=')) access().allow = o.slice(6).split(',');
      else if (o.startsWith('deny=')) access().deny = o.slice(5).split(',');
      else if (o.startsWith('limit=')) access().limits.push(counted(o.slice(6), 'max'));
      else if (o.startsWith('reserve=')) access().reservations.push(counted(o.slice(8), 'seats'));
      else pool[o] = true; // refused by the server's schema, with its message
    }
    return pool as License['features'][number];
  });
}
const featureLine = (x: License['features'][number]) =>
  [
    `${x.name}=${x.seats}`,
    x.counting === 'instance' ? 'instance' : '',
    x.leaseTtlSeconds !== undefined ? `ttl=${x.leaseTtlSeconds}` : '',
    x.access?.allow ? `allow=${x.access.allow.join(',')}` : '',
    x.access?.deny.length ? `deny=${x.access.deny.join(',')}` : '',
    ...(x.access?.limits ?? []).map((l) => `limit=${l.principal}=${l.max}`),
    ...(x.access?.reservations ?? []).map((r) => `reserve=${r.principal}=${r.seats}`),
  ]
    .filter(Boolean)
    .join(' ');

function modeOf(rule: SharingRule): ShareMode {
  if (rule.by.length === 1 && rule.by[0] === 'instance') return 'instance';
  if (rule.by.length === 1 && rule.by[0] === 'site') return 'site';
  if (rule.by.length === 1 && rule.by[0] === 'device' && rule.cap === null) return 'device';
  return 'custom';
}

function ruleOf(f: FormState): SharingRule {
  const cap = num(f.shareCap);
  switch (f.shareMode) {
    case 'device':
      return { by: ['device'], cap: null };
    case 'instance':
      return { by: ['instance'], cap: null };
    case 'site':
      return { by: ['site'], cap: (cap ?? null) as number | null };
    default:
      return { by: f.shareAttrs, cap: (cap ?? null) as number | null };
  }
}

function fromLicense(l: License): FormState {
  return {
    productId: l.productId,
    customerId: l.customerId,
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
    shareMode: modeOf(l.sharing),
    shareAttrs: modeOf(l.sharing) === 'custom' ? l.sharing.by : ['user'],
    shareCap: l.sharing.cap === null ? '' : String(l.sharing.cap),
    clonePolicy: l.clonePolicy,
    vmPolicy: l.vmPolicy,
    lingerSeconds: String(l.lingerSeconds),
    overdraftSeats: String(l.overdraftSeats),
    allow: (l.access.allow ?? []).join('\n'),
    deny: l.access.deny.join('\n'),
    limits: l.access.limits.map((x) => `${x.principal}=${x.max}`).join('\n'),
    reservations: l.access.reservations.map((x) => `${x.principal}=${x.seats}`).join('\n'),
    features: l.features.map(featureLine).join('\n'),
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
  'sharing',
  'clonePolicy',
  'vmPolicy',
  'lingerSeconds',
  'overdraftSeats',
  'access',
  'features',
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
    sharing: ruleOf(f),
    clonePolicy: f.clonePolicy,
    vmPolicy: f.vmPolicy,
    lingerSeconds: num(f.lingerSeconds),
    overdraftSeats: num(f.overdraftSeats),
    access: accessOf(f),
    features: featuresOf(f),
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
    if (/feature|"base"/.test(e.message)) return 'features';
    if (/sharing|instance|site/.test(e.message)) return 'sharing';
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
    const [products, license, customers] = await Promise.all([
      api.products(),
      licenseId ? api.license(licenseId) : Promise.resolve(null),
      api.customers(),
    ]);
    return { products: products.items, license, customers: customers.items };
  }, [licenseId]);

  const [form, setForm] = useState<FormState>(EMPTY);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!data) return;
    if (data.license) setForm(fromLicense(data.license));
    else {
      // `?customerId=` (the customer page's New license) picks the customer, if it is one of the list.
      const customerId = data.customers.some((c) => c.id === query.get('customerId')) ? (query.get('customerId') ?? '') : '';
      setForm((f) => ({ ...f, productId: query.get('productId') ?? f.productId ?? data.products[0]?.id ?? '', customerId }));
    }
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
        if (form.customerId && form.customerId !== data.license.customerId) patch.customerId = form.customerId;
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
        const create: Record<string, unknown> = { productId: form.productId || undefined, customerId: form.customerId || undefined };
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
            <Field label="Customer" error={fieldError('customerId')}>
              {(p) => (
                <select {...p} value={form.customerId || DEFAULT_CUSTOMER} onChange={(e) => set('customerId', e.target.value)}>
                  {data.customers.map((c) => (
                    <option key={c.id} value={c.id}>
                      {c.name}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <NumberField
              label="Seats"
              name="seats"
              value={form.seats}
              onChange={(v) => set('seats', v)}
              error={fieldError('seats')}
              hint="How many users may run the application at once (1–1,000,000)."
            />
          </div>
          <div className="grid">
            <NumberField
              label="Max instances per device"
              name="maxInstancesPerDevice"
              value={form.maxInstancesPerDevice}
              onChange={(v) => set('maxInstancesPerDevice', v)}
              error={fieldError('maxInstancesPerDevice')}
              hint="Running copies allowed on one computer, on any seat (1–10,000)."
            />
            <NumberField
              label="Overdraft seats"
              name="overdraftSeats"
              value={form.overdraftSeats}
              onChange={(v) => set('overdraftSeats', v)}
              error={fieldError('overdraftSeats')}
              hint="Seats granted beyond the count when all are in use, marked and counted apart for the true-up. 0: none."
            />
          </div>
        </fieldset>

        <fieldset>
          <legend>Which uses share one seat</legend>
          <Radio
            legend="Sharing rule"
            name="shareMode"
            value={form.shareMode}
            onChange={(v) => set('shareMode', v as ShareMode)}
            options={[
              ['device', 'Per device', 'one seat per computer, shared by its running copies'],
              ['instance', 'Per instance', 'one seat per running copy'],
              ['site', 'Site', 'every use of the license shares one seat'],
              ['custom', 'By attributes', 'uses with equal values of the chosen attributes share a seat (e.g. one user on two computers)'],
            ]}
            error={fieldError('sharing')}
          />
          {form.shareMode === 'custom' && (
            <fieldset className="checks" aria-label="Sharing attributes">
              {MIXABLE.map(([attr, label]) => (
                <label key={attr} className="check">
                  <input
                    type="checkbox"
                    name={`share-${attr}`}
                    checked={form.shareAttrs.includes(attr)}
                    onChange={(e) =>
                      set('shareAttrs', e.target.checked ? [...form.shareAttrs, attr] : form.shareAttrs.filter((a) => a !== attr))
                    }
                  />
                  <span>{label}</span>
                </label>
              ))}
            </fieldset>
          )}
          {(form.shareMode === 'custom' || form.shareMode === 'site') && (
            <NumberField
              label="Most uses on one seat"
              name="shareCap"
              value={form.shareCap}
              onChange={(v) => set('shareCap', v)}
              error={null}
              hint="The next use takes another seat (RLM share=u:3 is user with 3). Empty: no cap."
            />
          )}
          <div className="grid">
            <Field
              label="Clone policy"
              error={fieldError('clonePolicy')}
              hint="One device fingerprint seen from several machines at once (a cloned disk or VM)."
            >
              {(p) => (
                <select
                  {...p}
                  name="clonePolicy"
                  value={form.clonePolicy}
                  onChange={(e) => set('clonePolicy', e.target.value as FormState['clonePolicy'])}
                >
                  <option value="separate">Separate: each machine needs its own seat</option>
                  <option value="refuse">Refuse the clones</option>
                  <option value="allow">Allow them to share</option>
                </select>
              )}
            </Field>
            <Field label="VM policy" error={fieldError('vmPolicy')} hint="Uses whose application says it runs in a VM or a container.">
              {(p) => (
                <select
                  {...p}
                  name="vmPolicy"
                  value={form.vmPolicy}
                  onChange={(e) => set('vmPolicy', e.target.value as FormState['vmPolicy'])}
                >
                  <option value="allow">Allow</option>
                  <option value="count-per-instance">Each takes a seat of its own</option>
                  <option value="deny">Deny</option>
                </select>
              )}
            </Field>
            <NumberField
              label="Linger (seconds)"
              name="lingerSeconds"
              value={form.lingerSeconds}
              onChange={(v) => set('lingerSeconds', v)}
              error={fieldError('lingerSeconds')}
              hint="After the last use checks in, the seat stays held this long for the same device or user. 0: none."
            />
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
            <NumberField
              label="Trial length in days"
              name="trialDays"
              value={form.trialDays}
              onChange={(v) => set('trialDays', v)}
              error={fieldError('trialDays')}
              hint="1–3650, counted from the first checkout."
            />
          )}
        </fieldset>

        <fieldset>
          <legend>Leases and reclamation</legend>
          <div className="grid">
            <div>
              <NumberField
                label="Lease TTL (seconds)"
                name="leaseTtlSeconds"
                value={form.leaseTtlSeconds}
                onChange={(v) => set('leaseTtlSeconds', v)}
                error={fieldError('leaseTtlSeconds')}
                hint={
                  form.noTtl
                    ? 'No TTL: a seat is held until check-in or release; reclamation never frees it.'
                    : `${fmtDuration(Number(form.leaseTtlSeconds) || 0)} without a heartbeat, then the seat is reclaimed (10 s minimum).`
                }
                disabled={form.noTtl}
              />
              <label className="check">
                <input type="checkbox" checked={form.noTtl} onChange={(e) => set('noTtl', e.target.checked)} />
                <span>No TTL (never reclaimed)</span>
              </label>
            </div>
            <NumberField
              label="Heartbeat interval (seconds)"
              name="heartbeatIntervalSeconds"
              value={form.heartbeatIntervalSeconds}
              onChange={(v) => set('heartbeatIntervalSeconds', v)}
              error={fieldError('heartbeatIntervalSeconds')}
              hint={`How often clients renew. Must be shorter than the TTL. Empty: ${fmtDuration(defaultHb)}.`}
              placeholder={String(defaultHb)}
            />
          </div>
        </fieldset>

        <fieldset>
          <legend>Offline use</legend>
          <div className="grid">
            <NumberField
              label="Longest offline checkout (seconds)"
              name="maxOfflineSeconds"
              value={form.maxOfflineSeconds}
              onChange={(v) => set('maxOfflineSeconds', v)}
              error={fieldError('maxOfflineSeconds')}
              hint={
                Number(form.maxOfflineSeconds) > 0 ? `Up to ${fmtDuration(Number(form.maxOfflineSeconds))}.` : '0 forbids offline checkout.'
              }
            />
            <NumberField
              label="Max seats offline at once"
              name="maxOfflineSeats"
              value={form.maxOfflineSeats}
              onChange={(v) => set('maxOfflineSeats', v)}
              error={fieldError('maxOfflineSeats')}
              hint="Empty: no cap below the seat count."
            />
          </div>
        </fieldset>

        <fieldset>
          <legend>Who may take seats</legend>
          <p className="field-hint">
            One entry a line: <code>user:ann</code>, <code>host:ws-12</code> or <code>group:cad</code> (groups are kept on the Groups page).
          </p>
          <div className="grid">
            <TextField
              label="Allow only"
              name="allow"
              rows={3}
              value={form.allow}
              onChange={(v) => set('allow', v)}
              error={fieldError('access')}
              hint="Empty: everyone."
            />
            <TextField
              label="Deny"
              name="deny"
              rows={3}
              value={form.deny}
              onChange={(v) => set('deny', v)}
              error={null}
              hint="Checked before the allow list."
            />
            <TextField
              label="Most seats at once"
              name="limits"
              rows={3}
              value={form.limits}
              onChange={(v) => set('limits', v)}
              error={null}
              hint="principal=max, e.g. user:ann=1"
            />
            <TextField
              label="Reserved seats"
              name="reservations"
              rows={3}
              value={form.reservations}
              onChange={(v) => set('reservations', v)}
              error={null}
              hint="principal=seats, e.g. group:cad=2: others are refused once only reserved seats remain."
            />
          </div>
        </fieldset>

        <fieldset>
          <legend>Feature pools</legend>
          <TextField
            label="Features"
            name="features"
            rows={3}
            value={form.features}
            onChange={(v) => set('features', v)}
            error={fieldError('features')}
            hint="name=seats a line, e.g. render=5, then optionally instance (a seat per running instance), ttl=120 (its own lease lifetime), allow= and deny= (principals, comma separated), limit=user:ann=1 and reserve=group:cad=1: pools beside the base seats that checkouts ask for by name (FlexNet FEATURE lines)."
          />
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

/** A whole-number input in a labelled field: the form's one spelling of it. */
function NumberField({
  label,
  name,
  value,
  onChange,
  error,
  hint,
  placeholder,
  disabled,
}: {
  label: string;
  name: string;
  value: string;
  onChange: (v: string) => void;
  error: string | null;
  hint?: ReactNode;
  placeholder?: string;
  disabled?: boolean;
}): ReactNode {
  return (
    <Field label={label} error={error} hint={hint}>
      {(p) => (
        <input
          {...p}
          name={name}
          type="number"
          inputMode="numeric"
          value={value}
          placeholder={placeholder}
          disabled={disabled}
          onChange={(e) => onChange(e.target.value)}
        />
      )}
    </Field>
  );
}

/** A multi-line text input in a labelled field. */
function TextField({
  label,
  name,
  value,
  onChange,
  error,
  hint,
  rows,
}: {
  label: string;
  name: string;
  value: string;
  onChange: (v: string) => void;
  error: string | null;
  hint?: ReactNode;
  rows: number;
}): ReactNode {
  return (
    <Field label={label} error={error} hint={hint}>
      {(p) => <textarea {...p} name={name} rows={rows} value={value} onChange={(e) => onChange(e.target.value)} spellCheck={false} />}
    </Field>
  );
}

import { useState, type FormEvent } from 'react';
import { api, ApiError, fieldOf, type Product } from '../api';
import { fmtTime, plural } from '../format';
import { Link } from '../router';
import { useCan, useLoad, useSession, useTitle } from '../session';
import { ConfirmDialog, EmptyState, ErrorBox, Field, Loading, PageTitle, TableHead, useConfirmedAction } from '../components/ui';

export function Products() {
  useTitle('Products');
  // On-premise the license file brings the products: the server refuses changes (ENTITLEMENT_MANAGED).
  const { onPrem } = useSession();
  const isAdmin = useCan('admin') && !onPrem;
  const { data, error, reload } = useLoad(async () => {
    const [products, licenses] = await Promise.all([api.products(), api.licenses()]);
    const keys = new Map<string, number>();
    for (const l of licenses.items) keys.set(l.productId, (keys.get(l.productId) ?? 0) + 1);
    return { products: products.items, keys };
  }, []);
  const [created, setCreated] = useState<Product | null>(null);
  const remove = useConfirmedAction((product: Product) => api.deleteProduct(product.id), reload);

  return (
    <>
      <PageTitle>Products</PageTitle>
      <p className="lead">A product is an application you sell. Licenses belong to a product.</p>
      {isAdmin && (
        <CreateProduct
          onCreated={(p) => {
            setCreated(p);
            reload();
          }}
        />
      )}
      {created && (
        <p className="alert alert-ok" role="status">
          Product <strong>{created.name}</strong> created. <Link to={`/licenses/new?productId=${created.id}`}>Create a license for it</Link>
        </p>
      )}
      <ErrorBox error={error} />
      {!data ? (
        !error && <Loading />
      ) : data.products.length === 0 ? (
        <EmptyState title="No products yet">
          <p>{isAdmin ? 'Create your first product above, then a license for it.' : 'An administrator has not created any product yet.'}</p>
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table table-cards">
            <caption className="sr-only">Products</caption>
            <TableHead columns={['Name', 'Id', 'Licenses', 'Created', isAdmin && 'Actions']} />
            <tbody>
              {data.products.map((p) => (
                <ProductRow
                  key={p.id}
                  product={p}
                  keys={data.keys.get(p.id) ?? 0}
                  isAdmin={isAdmin}
                  onChanged={reload}
                  onDelete={() => remove.ask(p)}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog {...remove.dialog} title={`Delete product ${remove.target?.name ?? ''}?`} confirmLabel="Delete product" danger>
        <p>The product is removed for good. A product that still owns licenses cannot be deleted.</p>
        <ErrorBox error={remove.error} />
      </ConfirmDialog>
    </>
  );
}

function CreateProduct({ onCreated }: { onCreated: (p: Product) => void }) {
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const p = await api.createProduct(name.trim());
      setName('');
      onCreated(p);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const fieldError = error instanceof ApiError && fieldOf(error) === 'name' ? error.message : null;
  return (
    <form className="card form-inline" onSubmit={(e) => void submit(e)} noValidate aria-label="Create a product">
      <Field label="New product name" error={fieldError} hint="For example “Acme CAD”. 1–200 characters.">
        {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} maxLength={200} autoComplete="off" />}
      </Field>
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? 'Creating…' : 'Create product'}
      </button>
      {!fieldError && <ErrorBox error={error} />}
    </form>
  );
}

function ProductRow({
  product,
  keys,
  isAdmin,
  onChanged,
  onDelete,
}: {
  product: Product;
  keys: number;
  isAdmin: boolean;
  onChanged: () => void;
  onDelete: () => void;
}) {
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(product.name);
  const [error, setError] = useState<unknown>(null);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api.renameProduct(product.id, name.trim());
      setEditing(false);
      setError(null);
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <tr>
      <th scope="row" data-label="Name">
        {editing ? (
          <form className="form-inline" onSubmit={(e) => void save(e)} noValidate>
            <Field label="Name">{(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} autoFocus />}</Field>
            <button type="submit" className="btn btn-small btn-primary">
              Save
            </button>
            <button type="button" className="btn btn-small" onClick={() => setEditing(false)}>
              Cancel
            </button>
            <ErrorBox error={error} />
          </form>
        ) : (
          product.name
        )}
      </th>
      <td data-label="Id">
        <code>{product.id}</code>
      </td>
      <td data-label="Licenses">{keys > 0 ? <Link to={`/licenses?productId=${product.id}`}>{plural(keys, 'license')}</Link> : 'none'}</td>
      <td data-label="Created">{fmtTime(product.createdAt)}</td>
      {isAdmin && (
        <td data-label="Actions" className="row-actions">
          <Link to={`/licenses/new?productId=${product.id}`} className="btn btn-small">
            New license
          </Link>
          <button type="button" className="btn btn-small" onClick={() => setEditing(true)} disabled={editing}>
            Rename
          </button>
          <button type="button" className="btn btn-small btn-danger-outline" onClick={onDelete}>
            Delete
          </button>
        </td>
      )}
    </tr>
  );
}

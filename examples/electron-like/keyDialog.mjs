// A minimal key dialog on the SDK's key API: asked once, checked with the server, remembered.
// In Electron, `app.ask` is a small BrowserWindow with one input and one label for `r.message`.
import { validateKey, rememberKey, rememberedKey } from '@floatd/client';

export async function licenseKey(app) {
  if (app.config.licenseKey) return app.config.licenseKey;
  const saved = await rememberedKey(app.dataDir);
  if (saved && saved.serverUrl === app.config.serverUrl) return saved.licenseKey;
  for (;;) {
    const key = await app.ask('License key:');
    if (key === undefined) return app.quit('No license key entered');
    const r = await validateKey({ serverUrl: app.config.serverUrl, licenseKey: key, stateDir: app.dataDir });
    app.show(r.message); // the same plain sentence floatd-run prints
    if (r.ok) {
      await rememberKey({ serverUrl: app.config.serverUrl, licenseKey: key }, app.dataDir);
      return key.trim();
    }
  }
}

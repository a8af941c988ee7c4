// The whole integration: checkout, a violation handler, offline mode and check-in.
import { FloatingLicense } from '@floatd/client';

export async function license(app) {
  const lic = new FloatingLicense({
    serverUrl: app.config.serverUrl,
    licenseKey: app.config.licenseKey,
    stateDir: app.dataDir,
    handleExit: true,
  });
  lic.on('violation', (v) => app.warn(`License problem (${v.code}): ${v.message}`)); // the app decides; the SDK never quits
  const seat = await lic.checkout();
  if (!seat.ok) return app.quit(`No license free: ${seat.message}`);
  app.onMenu('Work offline…', (days) => lic.checkoutOffline({ durationSeconds: days * 86400 }));
  app.onQuit(() => lic.checkin());
  return lic;
}

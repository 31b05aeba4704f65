/** Images and profiles, read-only (they are changed with the CLI or the API). */
import { ErrorBox, useCtx, useLoad, when } from '../ui';

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function ImagesPage() {
  const { api } = useCtx();
  const images = useLoad(() => api.images(), []);
  return (
    <section aria-labelledby="images-h">
      <h1 id="images-h">Images</h1>
      <p class="muted">
        Read-only here: add images with <code>dpu-ztp images add</code>.
      </p>
      <ErrorBox text={images.error} />
      {images.data?.items.length === 0 && <p class="muted">No images stored.</p>}
      {images.data && images.data.items.length > 0 && (
        <table class="plain">
          <caption class="sr-only">Stored images</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Size</th>
              <th scope="col">OS</th>
              <th scope="col">SHA-256</th>
              <th scope="col">Added</th>
            </tr>
          </thead>
          <tbody>
            {images.data.items.map((i) => (
              <tr key={i.name}>
                <td>{i.name}</td>
                <td>{size(i.size)}</td>
                <td>{[i.osName, i.osVersion].filter(Boolean).join(' ') || '—'}</td>
                <td>
                  <code class="hash" title={i.sha256}>
                    {i.sha256.slice(0, 16)}…
                  </code>
                </td>
                <td>{when(i.createdAt as string)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function ProfilesPage() {
  const { api } = useCtx();
  const profiles = useLoad(() => api.profiles(), []);
  return (
    <section aria-labelledby="profiles-h">
      <h1 id="profiles-h">Profiles</h1>
      <p class="muted">
        Read-only here: change profiles with <code>PUT /api/v1/profiles/{'{name}'}</code>.
      </p>
      <ErrorBox text={profiles.error} />
      {profiles.data?.items.length === 0 && <p class="muted">No profiles.</p>}
      {profiles.data && profiles.data.items.length > 0 && (
        <table class="plain">
          <caption class="sr-only">Profiles</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Version</th>
              <th scope="col">Type</th>
              <th scope="col">Boot image</th>
              <th scope="col">Installer image</th>
              <th scope="col">Configuration</th>
            </tr>
          </thead>
          <tbody>
            {profiles.data.items.map((p) => {
              const boot = p.bootImage as { osName?: string; osVersion?: string; image?: string } | undefined;
              return (
                <tr key={p.name}>
                  <td>{p.name}</td>
                  <td>{String(p.version ?? '')}</td>
                  <td>{String(p.type ?? '')}</td>
                  <td>{boot ? `${boot.osName ?? ''} ${boot.osVersion ?? ''} (${boot.image ?? ''})` : '—'}</td>
                  <td>{String(p.installerImage ?? '—')}</td>
                  <td>
                    {p.configuration
                      ? `${String(p.configurationHandling ?? '')}, ${String(p.configuration).length} chars`
                      : '—'}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

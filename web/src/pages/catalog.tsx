/** Images and profiles, read-only (they are changed with the CLI or the API). */
import type { Image, Profile } from '../api';
import { type Column, Table } from '../table';
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

const IMAGE_COLUMNS: Column<Image>[] = [
  { head: 'Name', cell: (i) => i.name },
  { head: 'Size', cell: (i) => size(i.size) },
  { head: 'OS', cell: (i) => [i.osName, i.osVersion].filter(Boolean).join(' ') || '—' },
  {
    head: 'SHA-256',
    cell: (i) => (
      <code class="hash" title={i.sha256}>
        {i.sha256.slice(0, 16)}…
      </code>
    ),
  },
  { head: 'Added', cell: (i) => when(i.createdAt as string) },
];

const PROFILE_COLUMNS: Column<Profile>[] = [
  { head: 'Name', cell: (p) => p.name },
  { head: 'Version', cell: (p) => String(p.version ?? '') },
  { head: 'Type', cell: (p) => String(p.type ?? '') },
  {
    head: 'Boot image',
    cell: (p) => {
      const boot = p.bootImage as { osName?: string; osVersion?: string; image?: string } | undefined;
      return boot ? `${boot.osName ?? ''} ${boot.osVersion ?? ''} (${boot.image ?? ''})` : '—';
    },
  },
  { head: 'Installer image', cell: (p) => String(p.installerImage ?? '—') },
  {
    head: 'Configuration',
    cell: (p) =>
      p.configuration
        ? `${String(p.configurationHandling ?? '')}, ${String(p.configuration).length} chars`
        : '—',
  },
];

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
      <Table
        caption="Stored images"
        columns={IMAGE_COLUMNS}
        rows={images.data?.items}
        rowKey={(i) => i.name}
        empty="No images stored."
      />
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
      <Table
        caption="Profiles"
        columns={PROFILE_COLUMNS}
        rows={profiles.data?.items}
        rowKey={(p) => p.name}
        empty="No profiles."
      />
    </section>
  );
}

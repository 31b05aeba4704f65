/**
 * `dpu-ztp images add|list|rm`: the image service through the operator API.
 * `add` hashes the file first (SHA-256, sent as X-Expected-Sha256 so that a
 * corrupted transfer is refused and leaves nothing behind), then streams it
 * with a progress bar on stderr when that is a terminal.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { components } from '../../web/api/index.js';
import { type ApiFlags, addApiOptions, apiClient, call } from '../api-client.js';
import { action, CliError } from '../exit.js';

type ImageView = components['schemas']['Image'];

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** A one-line progress bar on stderr, redrawn at most 10 times a second; silent when stderr is not a TTY. */
function progress(label: string, total: number) {
  const tty = process.stderr.isTTY === true;
  const t0 = performance.now();
  let last = 0;
  let done = 0;
  const draw = (final: boolean) => {
    const now = performance.now();
    if (!tty || (!final && now - last < 100)) return;
    last = now;
    const frac = total > 0 ? done / total : 1;
    const width = 30;
    const fill = Math.round(frac * width);
    const rate = done / Math.max(0.001, (now - t0) / 1000);
    process.stderr.write(
      `\r${label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
        `${human(done)}/${human(total)} ${human(rate)}/s\x1b[K${final ? '\n' : ''}`,
    );
  };
  return {
    counter: () =>
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          done += chunk.length;
          draw(false);
          cb(null, chunk);
        },
      }),
    finish: () => draw(true),
  };
}

async function add(name: string, file: string, flags: ApiFlags & { osName?: string; osVersion?: string }) {
  const api = await apiClient(flags);
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
    size = st.size;
  } catch (err) {
    throw new CliError(
      'CLI_ERR_FILE',
      `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const hash = createHash('sha256');
  const hashing = progress(`hashing ${basename(file)}`, size);
  await pipeline(
    createReadStream(file, { highWaterMark: 1024 * 1024 }),
    hashing.counter(),
    async (chunks: AsyncIterable<Buffer>) => {
      for await (const c of chunks) hash.update(c);
    },
  );
  hashing.finish();
  const sha256 = hash.digest('hex');
  const uploading = progress(`uploading ${name}`, size);
  const body = createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(uploading.counter());
  const img: ImageView = await call(
    api.http.PUT('/api/v1/images/{name}', {
      params: {
        path: { name },
        query: {
          ...(flags.osName ? { osName: flags.osName } : {}),
          ...(flags.osVersion ? { osVersion: flags.osVersion } : {}),
        },
      },
      // The bytes stream as they are read (the document types a binary body as a string).
      body: body as unknown as string, // undici takes a Node stream (an async iterable) as it is
      bodySerializer: (b: unknown) => b,
      duplex: 'half',
      headers: {
        'content-type': /\.iso$/i.test(name) ? 'application/x-iso9660-image' : 'application/octet-stream',
        'content-length': String(size),
        'x-expected-sha256': sha256,
      },
    } as never),
  );
  uploading.finish();
  process.stdout.write(
    `${img.name}: ${img.size} bytes, sha256 ${img.sha256}\n` +
      (img.urls ? `  ${img.urls.https}\n  ${img.urls.http}\n` : ''),
  );
}

async function list(flags: ApiFlags & { json?: boolean }) {
  const api = await apiClient(flags);
  const { items } = await call(api.http.GET('/api/v1/images'));
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
    return;
  }
  const rows = [
    ['NAME', 'SIZE', 'SHA256', 'OS', 'CREATED'],
    ...items.map((i) => [
      i.name,
      human(i.size),
      `${i.sha256.slice(0, 16)}…`,
      [i.osName, i.osVersion].filter(Boolean).join(' ') || '-',
      i.createdAt,
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] as string).length)));
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((v, c) => v.padEnd(widths[c] as number))
        .join('  ')
        .trimEnd()}\n`,
    );
}

async function rm(name: string, flags: ApiFlags & { force?: boolean }) {
  const api = await apiClient(flags);
  await call(
    api.http.DELETE('/api/v1/images/{name}', {
      params: { path: { name }, query: flags.force ? { force: true } : {} },
    }),
  );
  process.stdout.write(`deleted ${name}\n`);
}

/** Registers `images add|list|rm`. */
export function registerImagesCommands(program: Command): void {
  const images = program.command('images').description('upload, list and delete images of the image service');
  addApiOptions(
    images
      .command('add')
      .description('upload FILE as image NAME (SHA-256 checked end to end; replaces an image of that name)')
      .argument(
        '<NAME>',
        'image name, e.g. ubuntu-24.04.iso (ends the download URL; BMCs want .iso for ISOs)',
      )
      .argument('<FILE>', 'the image file')
      .option('--os-name <NAME>', 'OS name conveyed with the image')
      .option('--os-version <VERSION>', 'OS version conveyed with the image'),
  ).action(action((name: string, file: string, opts: ApiFlags) => add(name, file, opts)));
  addApiOptions(
    images.command('list').description('list images').option('--json', 'print the API objects as JSON'),
  ).action(action((opts: ApiFlags & { json?: boolean }) => list(opts)));
  addApiOptions(
    images
      .command('rm')
      .description('delete an image (one a profile uses needs --force)')
      .argument('<NAME>', 'image name')
      .option('--force', 'delete even when profiles use it'),
  ).action(action((name: string, opts: ApiFlags & { force?: boolean }) => rm(name, opts)));
}

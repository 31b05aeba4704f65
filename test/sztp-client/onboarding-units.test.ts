/**
 * The onboarding executor's parts: the script runner (time limits that kill
 * the whole process group, the warning exit code, output tails), the
 * resumable, hashing image download against a real HTTP server that breaks
 * connections mid-body, and the executor's stage order and clean-up.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  downloadImage,
  OnboardingExecutor,
  type ProgressType,
  parseBootstrappingOutput,
  parseOsRelease,
  parseSshPublicKey,
  progressInput,
  runHook,
  runProcess,
  SCRIPT_WARNING_EXIT,
  silentLog,
} from '../../sztp-client/index.js';

const root = mkdtempSync(join(tmpdir(), 'sztp-units-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('script runner', () => {
  it('kills a script and its children at the time limit', async () => {
    const pidFile = join(root, 'child.pid');
    const r = await runProcess('/bin/sh', ['-c', `sleep 30 & echo $! > ${pidFile}; echo started; wait`], {
      timeoutMs: 300,
      killGraceMs: 200,
    });
    expect(r.timedOut).toBe(true);
    expect(r.code).toBeNull();
    expect(r.output).toBe('started\n');
    expect(r.durationMs).toBeLessThan(5000);
    const child = Number(readFileSync(pidFile, 'utf8'));
    await new Promise((res) => setTimeout(res, 100));
    // Gone with its group (a zombie awaiting a reaper counts as gone).
    const stat = existsSync(`/proc/${child}/stat`) ? readFileSync(`/proc/${child}/stat`, 'utf8') : '';
    expect(stat === '' || /^\d+ \([^)]*\) Z/.test(stat), stat).toBe(true);
  });

  it('reports exit status and keeps only the tail of the output', async () => {
    const r = await runProcess(
      '/bin/sh',
      ['-c', `yes line | head -n 5000; echo last >&2; exit ${SCRIPT_WARNING_EXIT}`],
      {
        timeoutMs: 5000,
        maxOutput: 100,
      },
    );
    expect(r.code).toBe(SCRIPT_WARNING_EXIT);
    expect(r.output.length).toBeLessThanOrEqual(100);
    expect(r.output.endsWith('last\n')).toBe(true);
  });

  it('runs hooks through /bin/sh with the arguments appended', async () => {
    const r = await runHook('printf "%s|%s"', ['/a b/c', 'merge'], { timeoutMs: 5000 });
    expect(r).toMatchObject({ code: 0, output: '/a b/c|merge' });
  });
});

describe('resumable download', () => {
  const image = randomBytes(3 * 1024 * 1024 + 17);
  const sha = new Uint8Array(createHash('sha256').update(image).digest());
  const flipped = Buffer.from(image);
  flipped[10] = (flipped[10] ?? 0) ^ 0xff;
  let server: Server;
  let base: string;
  const log: string[] = [];
  let cutsLeft = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      log.push(`${req.url} ${req.headers.range ?? 'full'}`);
      const ignoresRange = req.url?.startsWith('/norange');
      const start = range && !ignoresRange ? Number(range[1]) : 0;
      // One byte flipped (not overwritten: a random image holds any given value at 1 in 256).
      const body = req.url?.startsWith('/wrong') ? flipped : image;
      if (req.url?.startsWith('/missing')) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(start > 0 ? 206 : 200, {
        'content-length': body.length - start,
        ...(start > 0 ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
      });
      if (cutsLeft > 0) {
        cutsLeft--;
        // Send part of the body, then cut the connection mid-body.
        res.write(body.subarray(start, start + 1024 * 1024), () => res.socket?.destroy());
        return;
      }
      res.end(body.subarray(start));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  it('resumes with Range after the connection breaks, hashing across the pieces', async () => {
    log.length = 0;
    cutsLeft = 2;
    const dest = join(root, 'a.img');
    const r = await downloadImage({ uris: [`${base}/img`], sha256: sha, dest, idleTimeoutMs: 5000 });
    expect(r).toMatchObject({ bytes: image.length, resumes: 2 });
    expect(readFileSync(dest).equals(image)).toBe(true);
    expect(log).toEqual(['/img full', `/img bytes=${1024 * 1024}-`, `/img bytes=${2 * 1024 * 1024}-`]);
  });

  it('starts over with a fresh hash when the server ignores Range', async () => {
    cutsLeft = 1;
    const dest = join(root, 'b.img');
    const r = await downloadImage({ uris: [`${base}/norange`], sha256: sha, dest, idleTimeoutMs: 5000 });
    expect(r.bytes).toBe(image.length);
    expect(readFileSync(dest).equals(image)).toBe(true);
  });

  it('tries the next URI, refuses a wrong hash and leaves no file behind', async () => {
    const dest = join(root, 'c.img');
    const ok = await downloadImage({
      uris: [`${base}/missing`, 'ftp://x/y', `${base}/img`],
      sha256: sha,
      dest,
      idleTimeoutMs: 5000,
    });
    expect(ok.uri).toBe(`${base}/img`);
    await expect(
      downloadImage({ uris: [`${base}/wrong`], sha256: sha, dest: join(root, 'd.img'), idleTimeoutMs: 5000 }),
    ).rejects.toMatchObject({ code: 'SZTP_CLIENT_ERR_IMAGE_HASH' });
    expect(existsSync(join(root, 'd.img'))).toBe(false);
    await expect(
      downloadImage({
        uris: [`${base}/missing`],
        sha256: sha,
        dest: join(root, 'e.img'),
        idleTimeoutMs: 5000,
      }),
    ).rejects.toMatchObject({
      code: 'SZTP_CLIENT_ERR_IMAGE_DOWNLOAD',
      message: expect.stringMatching(/HTTP 404/),
    });
  });
});

describe('image size limit', () => {
  let server: Server;
  let base: string;
  const requests: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const body = randomBytes(2 * 1024 * 1024);
      if (req.url === '/announced') res.writeHead(200, { 'content-length': body.length });
      else res.writeHead(200); // chunked: only the bytes themselves tell the size
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  it('refuses an image announced larger than the limit, and cuts one that grows past it, without resuming', async () => {
    const sha = new Uint8Array(32);
    for (const path of ['/announced', '/chunked']) {
      requests.length = 0;
      const dest = join(root, `big${path.replace('/', '-')}.img`);
      await expect(
        downloadImage({
          uris: [`${base}${path}`],
          sha256: sha,
          dest,
          idleTimeoutMs: 5000,
          maxBytes: 1024 * 1024,
        }),
      ).rejects.toMatchObject({
        code: 'SZTP_CLIENT_ERR_IMAGE_DOWNLOAD',
        message: expect.stringMatching(/1048576-byte limit/),
      });
      expect(existsSync(dest)).toBe(false);
      expect(requests).toEqual([path]); // no resume attempts
    }
  });
});

describe('onboarding executor', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const run = async (
    info: Parameters<OnboardingExecutor['onboard']>[0],
    over: Record<string, unknown> = {},
  ) => {
    const reports: string[] = [];
    const ex = new OnboardingExecutor({
      workDir: join(root, 'work'),
      running: { name: 'os', version: '1' },
      configPath: join(root, 'etc', 'conf'),
      scriptTimeoutMs: 2000,
      downloadIdleTimeoutMs: 2000,
      log: silentLog,
      ...over,
    });
    const outcome = await ex
      .onboard(info, async (t: ProgressType) => void reports.push(t))
      .catch((e: { code: string }) => e.code);
    return { outcome, reports };
  };

  it('maps the warning exit code to *-warning then *-complete, anything else to *-error and a stop', async () => {
    const warn = await run({ 'pre-configuration-script': b64(`exit ${SCRIPT_WARNING_EXIT}`) });
    expect(warn).toEqual({
      outcome: 'complete',
      reports: ['pre-script-initiated', 'pre-script-warning', 'pre-script-complete'],
    });
    const err = await run({
      'pre-configuration-script': b64('echo broken >&2; exit 3'),
      'configuration-handling': 'replace',
      configuration: b64('x'),
    });
    expect(err).toEqual({
      outcome: 'SZTP_CLIENT_ERR_SCRIPT',
      reports: ['pre-script-initiated', 'pre-script-error'],
    });
    expect(existsSync(join(root, 'etc', 'conf'))).toBe(false);
    const slow = await run(
      { 'post-configuration-script': b64('#!/bin/sh\nsleep 10\n') },
      { scriptTimeoutMs: 200 },
    );
    expect(slow.reports).toEqual(['post-script-initiated', 'post-script-error']);
  });

  it('puts the previous configuration back when the config hook fails', async () => {
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc', 'conf'), 'old\n');
    const r = await run(
      { 'configuration-handling': 'merge', configuration: b64('new\n') },
      { configHook: 'exit 1;' },
    );
    expect(r).toEqual({ outcome: 'SZTP_CLIENT_ERR_CONFIG', reports: ['config-initiated', 'config-error'] });
    expect(readFileSync(join(root, 'etc', 'conf'), 'utf8')).toBe('old\n');
  });

  it('skips a boot image that is already running; refuses one without a hash or without an install hook', async () => {
    const same = await run({
      'boot-image': { 'os-name': 'os', 'os-version': '1', 'download-uri': ['http://x/'] },
    });
    expect(same).toEqual({ outcome: 'complete', reports: ['boot-image-complete'] });
    const noHash = await run({
      'boot-image': { 'os-name': 'os', 'os-version': '2', 'download-uri': ['http://x/'] },
    });
    expect(noHash).toEqual({
      outcome: 'SZTP_CLIENT_ERR_IMAGE_HASH',
      reports: ['boot-image-mismatch', 'boot-image-initiated', 'boot-image-error'],
    });
    const noHook = await run({
      'boot-image': {
        'os-name': 'os',
        'os-version': '2',
        'download-uri': ['http://x/'],
        'image-verification': [{ 'hash-algorithm': 'sha-256', 'hash-value': Array(32).fill('ab').join(':') }],
      },
    });
    expect(noHook.outcome).toBe('SZTP_CLIENT_ERR_INSTALL_HOOK');
  });
});

describe('device facts', () => {
  it('reads os-release and SSH public keys', () => {
    expect(parseOsRelease('NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="24.04"\n')).toEqual({
      name: 'ubuntu',
      version: '24.04',
    });
    const blob = Buffer.concat([
      Buffer.from([0, 0, 0, 11]),
      Buffer.from('ssh-ed25519'),
      Buffer.alloc(36),
    ]).toString('base64');
    expect(parseSshPublicKey(`ssh-ed25519 ${blob} root@x`)).toEqual({
      algorithm: 'ssh-ed25519',
      keyData: blob,
    });
    expect(parseSshPublicKey(`ssh-rsa ${blob} root@x`)).toBeUndefined(); // algorithm and blob disagree
  });

  it('encodes report-progress input with the bootstrap-complete-only containers (YANG when)', () => {
    const cert = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]);
    const complete = progressInput({
      type: 'bootstrap-complete',
      message: 'done',
      sshHostKeys: [{ algorithm: 'ssh-ed25519', keyData: 'AAAA' }],
      trustAnchorCerts: [cert],
    });
    expect(complete).toEqual({
      'ietf-sztp-bootstrap-server:input': {
        'progress-type': 'bootstrap-complete',
        message: 'done',
        'ssh-host-keys': { 'ssh-host-key': [{ algorithm: 'ssh-ed25519', 'key-data': 'AAAA' }] },
        'trust-anchor-certs': { 'trust-anchor-cert': ['MAMCAQE='] },
      },
    });
    // Never on other types (the OPI agent's empty containers break strict servers, notes §5.4).
    expect(
      progressInput({ type: 'config-complete', sshHostKeys: [{ algorithm: 'a', keyData: 'b' }] }),
    ).toEqual({
      'ietf-sztp-bootstrap-server:input': { 'progress-type': 'config-complete' },
    });
  });

  it('decodes get-bootstrapping-data output and refuses what is not', () => {
    const out = parseBootstrappingOutput(
      JSON.stringify({
        'ietf-sztp-bootstrap-server:output': {
          'reporting-level': 'verbose',
          'conveyed-information': 'MAMCAQE=',
        },
      }),
    );
    expect(out).toEqual({
      conveyedInformation: new Uint8Array([0x30, 3, 2, 1, 1]),
      reportingLevel: 'verbose',
    });
    expect(() => parseBootstrappingOutput('{}')).toThrow(/no ietf-sztp-bootstrap-server:output/);
    expect(() =>
      parseBootstrappingOutput(
        JSON.stringify({ 'ietf-sztp-bootstrap-server:output': { 'conveyed-information': '%%' } }),
      ),
    ).toThrow(/not base64/);
  });
});

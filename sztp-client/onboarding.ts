/**
 * The onboarding executor (RFC 8572 §5.6): boot image, then pre-configuration
 * script, then configuration, then post-configuration script — each stage
 * reported (`*-initiated`, `*-warning`, `*-complete`), and on the first failure
 * the matching `*-error` report and a stop. The agent never writes disks or
 * running configuration itself: a verified image goes to `--install-hook`, the
 * configuration to a file and `--config-hook`.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Attr, redactUrl, withSpan } from '../otel/index.js';
import type { BootImage, OnboardingInformation } from '../pki/verify.js';
import type { OsRelease } from './device-facts.js';
import { downloadImage } from './download.js';
import { AgentError } from './errors.js';
import type { AgentLog } from './logger.js';
import type { Executor, OnboardingOutcome, ProgressSink } from './ports.js';
import {
  describeResult,
  type ProcessResult,
  runHook,
  runProcess,
  SCRIPT_WARNING_EXIT,
} from './process-runner.js';

/** Settings of {@link OnboardingExecutor}. */
export interface OnboardingOptions {
  /** Scratch directory for the image and scripts (under `--state-dir`). */
  workDir: string;
  /** The running OS, compared with boot-image os-name/os-version. */
  running: OsRelease;
  /** `--install-hook CMD`: run as `CMD <image path>`. */
  installHook?: string;
  /** `--config-path`: where the configuration is written, atomically. */
  configPath?: string;
  /** `--config-hook CMD`: run as `CMD <config path> <merge|replace>` after the write. */
  configHook?: string;
  /** `--script-timeout`, ms: for scripts and hooks alike. */
  scriptTimeoutMs: number;
  /** Idle time before a download connection counts as broken, ms. */
  downloadIdleTimeoutMs: number;
  /** Largest boot image accepted, bytes (default 16 GiB). */
  maxImageBytes?: number;
  /** Slowest average download rate tolerated, bytes/s (default 64 KiB/s). */
  minDownloadRate?: number;
  /** Ends a download at once (the agent's SIGTERM). */
  signal?: AbortSignal;
  /** Extra environment for scripts and hooks (e.g. SZTP_SERIAL_NUMBER). */
  env?: Record<string, string>;
  log: AgentLog;
}

/** The SHA-256 from image-verification (bare or module-qualified identity), as bytes. */
export function imageSha256(bi: BootImage): Uint8Array | undefined {
  for (const v of bi['image-verification'] ?? []) {
    if (v['hash-algorithm'].replace(/^[^:]*:/, '') !== 'sha-256') continue;
    const hex = v['hash-value'].replace(/:/g, '');
    if (/^[0-9a-fA-F]{64}$/.test(hex)) return new Uint8Array(Buffer.from(hex, 'hex'));
  }
  return undefined;
}

/**
 * The work-file name for a boot image: the last path segment of the first http(s)
 * `download-uri`, reduced to `[A-Za-z0-9._-]`, never `.`/`..` or a dot file, at most 100
 * characters; `boot-image` when nothing usable is left. The name reaches the install hook
 * (some look at the extension); the directory is always the work directory.
 */
export function imageFileName(uris: readonly string[]): string {
  for (const raw of uris.slice(0, 16)) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      continue;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') continue;
    let segment: string;
    try {
      segment = decodeURIComponent(url.pathname.split('/').pop() ?? '');
    } catch {
      segment = url.pathname.split('/').pop() ?? '';
    }
    const name = segment
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .replace(/^[.]+/, '')
      .slice(-100);
    return name === '' ? 'boot-image' : name;
  }
  return 'boot-image';
}

/** Writes `data` to `path` atomically (temp file in the same directory, fsync, rename). */
export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

type Stage = 'pre-script' | 'post-script';

/** Carries out onboarding information. */
export class OnboardingExecutor implements Executor {
  readonly #o: OnboardingOptions;
  constructor(options: OnboardingOptions) {
    this.#o = options;
  }

  #env(extra: Record<string, string>): NodeJS.ProcessEnv {
    return { ...process.env, ...this.#o.env, ...extra };
  }

  async onboard(info: OnboardingInformation, progress: ProgressSink): Promise<OnboardingOutcome> {
    await mkdir(this.#o.workDir, { recursive: true, mode: 0o700 });
    const bi = info['boot-image'];
    if (
      bi &&
      (await withSpan('sztp-client.boot-image', {}, () => this.#bootImage(bi, progress))) === 'rebooting'
    )
      return 'rebooting';
    const pre = info['pre-configuration-script'];
    if (pre !== undefined)
      await withSpan('sztp-client.script', { [Attr.sztpScript]: 'pre-script' }, () =>
        this.#script('pre-script', Buffer.from(pre, 'base64'), info, progress),
      );
    const config = info.configuration;
    if (config !== undefined)
      await withSpan('sztp-client.config', {}, () =>
        this.#configuration(
          Buffer.from(config, 'base64'),
          info['configuration-handling'] ?? 'merge',
          progress,
        ),
      );
    const post = info['post-configuration-script'];
    if (post !== undefined)
      await withSpan('sztp-client.script', { [Attr.sztpScript]: 'post-script' }, () =>
        this.#script('post-script', Buffer.from(post, 'base64'), info, progress),
      );
    return 'complete';
  }

  async #bootImage(bi: BootImage, progress: ProgressSink): Promise<OnboardingOutcome> {
    const want = `${bi['os-name'] ?? '?'} ${bi['os-version'] ?? '?'}`;
    const running = this.#o.running;
    // RFC 8572 §5.6: only a boot image that differs from the running one is installed.
    if (
      bi['os-name'] !== undefined &&
      bi['os-name'] === running.name &&
      bi['os-version'] === running.version
    ) {
      await progress('boot-image-complete', `boot image ${want} is already running; nothing to install`);
      return 'complete';
    }
    if (bi['os-name'] !== undefined)
      await progress(
        'boot-image-mismatch',
        `running ${running.name ?? '?'} ${running.version ?? '?'}, conveyed ${want}`,
      );
    await progress('boot-image-initiated', `installing boot image ${want}`);
    const fail = async (code: 'SZTP_CLIENT_ERR_IMAGE_HASH' | 'SZTP_CLIENT_ERR_INSTALL_HOOK', msg: string) => {
      await progress('boot-image-error', msg);
      return new AgentError(code, msg);
    };
    const sha = imageSha256(bi);
    if (!sha)
      throw await fail(
        'SZTP_CLIENT_ERR_IMAGE_HASH',
        'no sha-256 image-verification conveyed: cannot verify the image',
      );
    if (!this.#o.installHook)
      throw await fail(
        'SZTP_CLIENT_ERR_INSTALL_HOOK',
        'a boot image must be installed but no --install-hook is configured',
      );
    const uris = bi['download-uri'] ?? [];
    // Never from the raw URI: `x:..` once named the state directory itself (EISDIR).
    const dest = join(this.#o.workDir, imageFileName(uris));
    let got: Awaited<ReturnType<typeof downloadImage>>;
    try {
      got = await withSpan('sztp-client.download', {}, async (span) => {
        const r = await downloadImage({
          uris,
          sha256: sha,
          dest,
          idleTimeoutMs: this.#o.downloadIdleTimeoutMs,
          ...(this.#o.maxImageBytes !== undefined ? { maxBytes: this.#o.maxImageBytes } : {}),
          ...(this.#o.minDownloadRate !== undefined ? { minRate: this.#o.minDownloadRate } : {}),
          ...(this.#o.signal ? { signal: this.#o.signal } : {}),
          onEvent: (m) => this.#o.log.line('warn', 'boot-image', m),
        });
        span.setAttribute(Attr.imageBytesReceived, r.bytes);
        span.setAttribute(Attr.imageDownloadResumes, r.resumes);
        span.setAttribute(Attr.urlFull, redactUrl(r.uri));
        return r;
      });
    } catch (err) {
      const e = err as AgentError;
      await progress('boot-image-error', `${e.code}: ${e.message}`);
      throw err;
    }
    const mib = got.bytes / 1048576;
    this.#o.log.line('info', 'boot-image', `downloaded and verified ${got.uri}`, {
      bytes: got.bytes,
      resumes: got.resumes,
      mibPerSecond: Number((mib / Math.max(got.durationMs / 1000, 0.001)).toFixed(1)),
    });
    if (got.resumes > 0)
      await progress(
        'boot-image-warning',
        `download resumed ${got.resumes} time(s) after broken connections`,
      );
    let r: ProcessResult;
    const hook = this.#o.installHook;
    try {
      r = await withSpan('sztp-client.install', {}, async (span) => {
        const out = await runHook(hook, [dest], {
          env: this.#env({
            SZTP_IMAGE_PATH: dest,
            SZTP_OS_NAME: bi['os-name'] ?? '',
            SZTP_OS_VERSION: bi['os-version'] ?? '',
            SZTP_IMAGE_SHA256: Buffer.from(sha).toString('hex'),
          }),
          cwd: this.#o.workDir,
          timeoutMs: this.#o.scriptTimeoutMs,
          ...(this.#o.signal ? { signal: this.#o.signal } : {}),
        });
        if (out.code !== null) span.setAttribute(Attr.processExitCode, out.code);
        return out;
      });
    } finally {
      // The hook has installed (or failed to install) the image: the copy is not kept.
      await rm(dest, { force: true });
    }
    const how = describeResult(r, this.#o.scriptTimeoutMs);
    if (!r.timedOut && r.code === SCRIPT_WARNING_EXIT) {
      await progress('boot-image-installed-rebooting', `installed ${want}; rebooting (${how})`);
      return 'rebooting';
    }
    if (r.timedOut || r.code !== 0)
      throw await fail('SZTP_CLIENT_ERR_INSTALL_HOOK', `install hook failed, ${how}`);
    await progress(
      'boot-image-complete',
      `installed boot image ${want} (sha-256 verified, ${got.bytes} bytes)`,
    );
    return 'complete';
  }

  async #script(
    stage: Stage,
    body: Buffer,
    info: OnboardingInformation,
    progress: ProgressSink,
  ): Promise<void> {
    await progress(
      `${stage}-initiated`,
      `running the ${stage === 'pre-script' ? 'pre' : 'post'}-configuration script (${body.length} bytes)`,
    );
    const file = join(this.#o.workDir, `${stage}-${randomBytes(4).toString('hex')}`);
    // A fresh name, created exclusively and never through a symlink.
    const fh = await open(
      file,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o700,
    );
    try {
      await fh.writeFile(body);
    } finally {
      await fh.close();
    }
    let r: ProcessResult;
    try {
      // A script without `#!` is a shell script (the RFC leaves the language to the vendor).
      const shebang = body.subarray(0, 2).toString('latin1') === '#!';
      r = await runProcess(shebang ? file : '/bin/sh', shebang ? [] : [file], {
        env: this.#env({
          SZTP_STAGE: stage,
          ...(this.#o.configPath ? { SZTP_CONFIG_PATH: this.#o.configPath } : {}),
          ...(info['configuration-handling'] ? { SZTP_CONFIG_HANDLING: info['configuration-handling'] } : {}),
        }),
        cwd: this.#o.workDir,
        timeoutMs: this.#o.scriptTimeoutMs,
        ...(this.#o.signal ? { signal: this.#o.signal } : {}),
      });
    } catch (err) {
      r = { code: null, signal: null, timedOut: false, output: (err as Error).message, durationMs: 0 };
    } finally {
      await rm(file, { force: true });
    }
    const how = describeResult(r, this.#o.scriptTimeoutMs);
    if (!r.timedOut && r.code === 0) {
      await progress(`${stage}-complete`, `script succeeded, ${how}`);
      return;
    }
    if (!r.timedOut && r.code === SCRIPT_WARNING_EXIT) {
      await progress(`${stage}-warning`, `script reported a warning, ${how}`);
      await progress(`${stage}-complete`, 'script completed with a warning');
      return;
    }
    await progress(`${stage}-error`, `script failed, ${how}`);
    throw new AgentError('SZTP_CLIENT_ERR_SCRIPT', `${stage} failed, ${how}`);
  }

  async #configuration(config: Buffer, handling: 'merge' | 'replace', progress: ProgressSink): Promise<void> {
    await progress('config-initiated', `committing configuration (${config.length} bytes, ${handling})`);
    const fail = async (msg: string) => {
      await progress('config-error', msg);
      return new AgentError('SZTP_CLIENT_ERR_CONFIG', msg);
    };
    const path = this.#o.configPath;
    if (!path) throw await fail('configuration conveyed but no --config-path is configured');
    let previous: Buffer | undefined;
    try {
      previous = await readFile(path);
    } catch {
      previous = undefined;
    }
    try {
      await writeFileAtomic(path, config);
    } catch (err) {
      throw await fail(`writing ${path}: ${(err as Error).message}`);
    }
    if (this.#o.configHook) {
      const r = await runHook(this.#o.configHook, [path, handling], {
        env: this.#env({ SZTP_CONFIG_PATH: path, SZTP_CONFIG_HANDLING: handling }),
        cwd: this.#o.workDir,
        timeoutMs: this.#o.scriptTimeoutMs,
        ...(this.#o.signal ? { signal: this.#o.signal } : {}),
      }).catch(
        (err: Error) =>
          ({
            code: null,
            signal: null,
            timedOut: false,
            output: err.message,
            durationMs: 0,
          }) as ProcessResult,
      );
      const how = describeResult(r, this.#o.scriptTimeoutMs);
      if (r.timedOut || (r.code !== 0 && r.code !== SCRIPT_WARNING_EXIT)) {
        // Leave no new state behind (RFC 8572 §5.6): put the previous file back.
        if (previous !== undefined) await writeFileAtomic(path, previous).catch(() => {});
        else await rm(path, { force: true });
        throw await fail(`config hook failed, ${how}`);
      }
      if (r.code === SCRIPT_WARNING_EXIT)
        await progress('config-warning', `config hook reported a warning, ${how}`);
    }
    await progress(
      'config-complete',
      `configuration written to ${path} (${handling})${this.#o.configHook ? ' and applied by the config hook' : ''}`,
    );
  }
}

/**
 * A throw-away pair of network namespaces joined by a veth pair, for tests that
 * run real DHCP servers and clients (as root). Every daemon is a foreground
 * child killed by its PID; `destroy()` removes both namespaces (and with them the
 * veth pair). Addresses are private test subnets that exist only inside these
 * namespaces, so no packet leaves them.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Runs a short command synchronously (bounded), throwing with its stderr on failure. */
export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Polls `check` every 25 ms until it holds or `timeoutMs` passes. */
export async function waitUntil(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A foreground child process with its output captured. */
export class Daemon {
  readonly proc: ChildProcess;
  output = '';
  exitCode: number | null | undefined;
  private readonly exited: Promise<void>;
  constructor(cmd: string, args: string[]) {
    this.proc = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    this.proc.stdout?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code) => {
        this.exitCode = code;
        resolve();
      });
      this.proc.on('error', (err) => {
        this.output += String(err);
        this.exitCode = -1;
        resolve();
      });
    });
  }
  /** Resolves when the process has exited, or throws after `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<void> {
    await waitUntil(() => this.exitCode !== undefined, `exit of pid ${this.proc.pid}`, timeoutMs);
  }
  /** SIGTERM by PID, then SIGKILL if it is still there after 2 s. */
  async stop(): Promise<void> {
    if (this.exitCode !== undefined || this.proc.pid === undefined) return;
    process.kill(this.proc.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (this.exitCode === undefined && this.proc.pid !== undefined) process.kill(this.proc.pid, 'SIGKILL');
    }, 2000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** The two namespaces and the interface in each. */
export class NetnsPair {
  readonly id = `${process.pid % 100000}${randomBytes(2).toString('hex')}`;
  readonly server = `sztp-s-${this.id}`;
  readonly client = `sztp-c-${this.id}`;
  /** Interface names: ≤ 15 characters (IFNAMSIZ). */
  readonly serverIf = `zs${this.id}`;
  readonly clientIf = `zc${this.id}`;
  private readonly daemons = new Set<Daemon>();

  /** Creates namespaces, veth pair and addresses (`v4Cidr`, `v6Cidr` on the server side). */
  create(v4Cidr: string, v6Cidr: string): void {
    run('ip', ['netns', 'add', this.server]);
    run('ip', ['netns', 'add', this.client]);
    run('ip', ['link', 'add', this.serverIf, 'type', 'veth', 'peer', 'name', this.clientIf]);
    run('ip', ['link', 'set', this.serverIf, 'netns', this.server]);
    run('ip', ['link', 'set', this.clientIf, 'netns', this.client]);
    // No duplicate address detection: addresses are usable at once (else dhclient -6
    // and dnsmasq wait for DAD to finish on the link-local addresses).
    for (const [ns, ifc] of [
      [this.server, this.serverIf],
      [this.client, this.clientIf],
    ] as const)
      this.exec(ns, 'sh', [
        '-c',
        `for k in all default ${ifc}; do echo 0 > /proc/sys/net/ipv6/conf/$k/accept_dad; done`,
      ]);
    run('ip', ['-n', this.server, 'addr', 'add', v4Cidr, 'dev', this.serverIf]);
    run('ip', ['-n', this.server, 'addr', 'add', v6Cidr, 'dev', this.serverIf, 'nodad']);
    for (const [ns, ifc] of [
      [this.server, this.serverIf],
      [this.client, this.clientIf],
    ] as const) {
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', ns, 'link', 'set', ifc, 'up']);
    }
  }

  /** Runs a short command inside a namespace. */
  exec(ns: string, cmd: string, args: string[]): string {
    return run('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** Starts a foreground daemon inside a namespace (`ip netns exec` execs it: same PID). */
  spawn(ns: string, cmd: string, args: string[]): Daemon {
    const d = new Daemon('ip', ['netns', 'exec', ns, cmd, ...args]);
    this.daemons.add(d);
    return d;
  }

  /** Stops every daemon still running, then deletes both namespaces; never throws. */
  async destroy(): Promise<void> {
    await Promise.all([...this.daemons].map((d) => d.stop().catch(() => undefined)));
    for (const ns of [this.server, this.client])
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        // Never created, or already gone.
      }
    try {
      // Only left in the root namespace if setup failed before moving it.
      run('ip', ['link', 'del', this.serverIf]);
    } catch {
      // Normal case: it went away with its namespace.
    }
  }
}

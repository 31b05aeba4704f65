/**
 * `dpu-ztp demo` as a technician runs it: the built CLI as a real child process
 * (in its own process group, as a shell runs a command), which makes a lab PKI,
 * starts `dpu-ztp serve`, emulated BMCs over TLS and, on each boot, the real
 * agent bundle. Proves: exit 0 with the summary when every DPU reached
 * bootstrap-complete; exit 1 naming the DPU and the step when one BMC is set to
 * fail; SIGINT mid-run stops everything; and in every case no process of its
 * group is left and its temporary lab directory is gone. The progress views
 * (terminal lines, compact table, plain lines) are checked on their own below.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compactTable, type JobJson, JobProgress } from '../../cli/job-progress.js';
import { demoOptions } from '../../cli/commands/demo.js';
import { childEnv, dpuZtpBin, scaledTimeout } from '../helpers/serve.js';
import { repeatsPgliteRun } from '../helpers/db.js';

interface DemoRun {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/**
 * Runs the demo in a new process group (detached), so that everything it starts shares the
 * group id = its pid; `onOutput` sees stdout as it comes.
 */
function runDemo(args: string[], onOutput?: (out: string, pid: number) => void): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [dpuZtpBin, 'demo', ...args], {
      env: childEnv(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const limit = setTimeout(() => {
      process.kill(-(p.pid as number), 'SIGKILL');
      reject(new Error(`demo did not finish:\n${out}\n${err}`));
    }, scaledTimeout(150_000));
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      onOutput?.(out, p.pid as number);
    });
    p.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    p.on('close', (code, signal) => {
      clearTimeout(limit);
      resolve({ pid: p.pid as number, code, signal, out, err });
    });
  });
}

/** Live processes whose process group is `pgid` (from /proc/<pid>/stat). */
function processesInGroup(pgid: number): string[] {
  const found: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid) {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {}
      found.push(`${name} ${fields[0]} ${cmd}`);
    }
  }
  return found;
}

/** The lab directory the demo names on its first line. */
const labDir = (out: string) => /^dpu-ztp demo: \d+ DPU\(s\) in (\S+);/m.exec(out)?.[1];

/** After the demo exited: nothing of its group runs (give the kernel a moment to reap). */
async function expectNothingLeft(r: DemoRun): Promise<void> {
  let left = processesInGroup(r.pid);
  for (let i = 0; left.length > 0 && i < 20; i++) {
    await new Promise((res) => setTimeout(res, 250));
    left = processesInGroup(r.pid);
  }
  expect(left, `processes left in the demo's group:\n${left.join('\n')}`).toEqual([]);
  const dir = labDir(r.out);
  expect(dir, r.out).toBeDefined();
  expect(existsSync(dir as string), `${dir} should be removed`).toBe(false);
}

describe.skipIf(repeatsPgliteRun)(
  'dpu-ztp demo (a real child process)',
  { timeout: scaledTimeout(200_000) },
  () => {
    it('--dpus 5: every DPU reaches bootstrap-complete, the summary and dashboard URL are printed, exit 0', async () => {
      const r = await runDemo(['--dpus', '5']);
      expect(r.code, `${r.out}\n${r.err}`).toBe(0);
      for (let i = 1; i <= 5; i++)
        expect(r.out).toMatch(
          new RegExp(
            `^DEMO-000${i} +\\S+ +bootstrap-complete +[\\d.]+s +(virtual-media|image-push) +7/7`,
            'm',
          ),
        );
      // Mixed personas: BlueField pushes its image, the others boot virtual media.
      expect(r.out).toMatch(/^DEMO-0002 +bluefield +bootstrap-complete +[\d.]+s +image-push /m);
      expect(r.out).toMatch(/^DEMO-0001 +generic +bootstrap-complete +[\d.]+s +virtual-media /m);
      expect(r.out).toMatch(/^5 of 5 DPUs reached bootstrap-complete; the job took /m);
      expect(r.out).toMatch(/^dashboard: http:\/\/127\.0\.0\.1:\d+\/ /m);
      // Off a terminal: plain progress lines, one per change.
      expect(r.out).toMatch(/^DEMO-0003 +generic +(queued|running) +[a-z-]+ +#1 /m);
      expect(r.out).toMatch(/^DEMO-0003 +generic +succeeded +done +#1 /m);
      expect(r.out).not.toContain('\x1b[');
      await expectNothingLeft(r);
    });

    it('--fail-dpu 2: exits 1 naming the DPU whose BMC refused and the step it failed in', async () => {
      const r = await runDemo(['--dpus', '2', '--fail-dpu', '2']);
      expect(r.code, `${r.out}\n${r.err}`).toBe(1);
      expect(r.out).toMatch(/^DEMO-0001 +generic +bootstrap-complete /m);
      expect(r.out).toMatch(/^DEMO-0002 +bluefield +FAILED .* stopped in power-cycle: REDFISH_ERR_HTTP/m);
      expect(r.out).toMatch(
        /^FAILED DEMO-0002 \(bluefield\) at step power-cycle: REDFISH_ERR_HTTP: .*HTTP 400.*injected fault/m,
      );
      expect(r.out).toMatch(/^1 of 2 DPUs reached bootstrap-complete/m);
      await expectNothingLeft(r);
    });

    it('SIGINT mid-run stops the agents, the BMCs and the service: nothing is left behind', async () => {
      let sent = false;
      const r = await runDemo(['--dpus', '2'], (out, pid) => {
        // Mid-run: the job exists and the devices are on their way.
        if (!sent && /^DEMO-0001 .*running/m.test(out)) {
          sent = true;
          process.kill(pid, 'SIGINT');
        }
      });
      expect(sent, r.out).toBe(true);
      expect(r.code, `${r.out}\n${r.err}`).toBe(130);
      expect(r.err).toMatch(/SIGINT: stopping/);
      expect(r.err).toMatch(/^stopped; removed /m);
      await expectNothingLeft(r);
    });
  },
);

function job(n: number, state = 'running'): JobJson {
  return {
    id: 'j1',
    kind: 'provision',
    state,
    createdAt: new Date(0).toISOString(),
    finishedAt: null,
    counts: { running: n, total: n },
    devices: Array.from({ length: n }, (_, i) => ({
      serial: `SN-${i}`,
      state: i === 0 ? 'failed' : 'running',
      step: i === 0 ? 'power-cycle' : i % 2 ? 'prepare' : 'await-device',
      attempt: 1,
      startedAt: new Date(Date.now() - 12_000).toISOString(),
      finishedAt: null,
      error: i === 0 ? { code: 'REDFISH_ERR_HTTP', message: 'refused' } : null,
    })),
  };
}

describe('job progress views', () => {
  const capture = (isTTY: boolean, columns?: number) => {
    const chunks: string[] = [];
    return { isTTY, columns, chunks, write: (t: string) => chunks.push(t) };
  };

  it('a terminal gets a line per device, redrawn in place', () => {
    const out = capture(true);
    const view = new JobProgress(out);
    view.render(job(3));
    view.render(job(3));
    expect(out.chunks[0]).toMatch(/SN-1 +running +prepare +#1 +12s/);
    expect(out.chunks[1]?.startsWith('\x1b[4A')).toBe(true); // up over 3 devices + the summary
  });

  it('above 20 devices a terminal gets the compact table: steps by state, then who stopped', () => {
    const out = capture(true);
    new JobProgress(out).render(job(30));
    const lines = compactTable(job(30));
    expect(lines[0]).toMatch(/^step +queued +running +succeeded +failed +needs-attention +cancelled$/);
    expect(lines[1]).toMatch(/^prepare +15 *$/);
    expect(lines[2]).toMatch(/^power-cycle +1 *$/);
    expect(lines[3]).toMatch(/^await-device +14 *$/);
    expect(lines[4]).toMatch(/^SN-0 +failed +power-cycle .*REDFISH_ERR_HTTP: refused/);
    expect(out.chunks[0]).not.toMatch(/SN-1 /);
  });

  it('cuts lines at the terminal width, so each frame line is one row', () => {
    const out = capture(true, 40);
    new JobProgress(out).render(job(2));
    const rows = (out.chunks[0] ?? '').split('\n').map((l) => l.replace(/\x1b\[[0-9]*[A-Za-z]/g, ''));
    expect(Math.max(...rows.map((l) => l.length))).toBeLessThanOrEqual(39);
    expect(rows[0]).toMatch(/…$/);
  });

  it('off a terminal: a plain line per device each time it changes, the summary at the end', () => {
    const out = capture(false);
    const view = new JobProgress(out);
    view.render(job(2));
    view.render(job(2));
    view.end(job(2, 'failed'));
    expect(out.chunks.join('').split('\n').filter(Boolean)).toHaveLength(3);
    expect(out.chunks.join('')).not.toContain('\x1b[');
  });
});

describe('demo flags', () => {
  const base = { dpus: '5', personas: 'mixed', agents: '8', timeout: '180' };
  it('parses personas, faults and ports', () => {
    const o = demoOptions({
      ...base,
      personas: 'bluefield,generic',
      failDpu: ['3', '1:task-exception'],
      portBase: '20000',
    });
    expect(o.personas).toEqual(['bluefield', 'generic']);
    expect([...o.faults]).toEqual([
      [2, 'reset-refused'],
      [0, 'task-exception'],
    ]);
    expect(o.portBase).toBe(20000);
  });
  it.each([
    [{ dpus: '0' }, /--dpus must be/],
    [{ personas: 'hpe' }, /unknown persona hpe/],
    [{ failDpu: ['9'] }, /--fail-dpu must be an integer 1..5/],
    [{ failDpu: ['1:melt'] }, /unknown fault melt/],
    [{ portBase: '65530' }, /leaves no room/],
  ])('refuses %o', (bad, why) => {
    expect(() => demoOptions({ ...base, ...bad })).toThrow(why);
  });
});

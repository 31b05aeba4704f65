/**
 * `deploy/` is not run here (no Kubernetes cluster, no systemd as PID 1), so
 * this checks what can be checked without one: every manifest parses, the
 * Deployment runs several replicas of `serve` with readiness on /readyz and
 * liveness on /healthz, the image volume is ReadWriteMany and mounted where
 * the config puts `images-dir`, the database URL and secret key come from the
 * Secret, every config key is a real setting; and the systemd unit passes
 * `systemd-analyze verify` (with ExecStart pointed at the built CLI).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { SETTINGS } from '../../cli/config.js';
import { dpuZtpBin, repoRoot } from '../helpers/serve.js';
import { which } from '../helpers/tools.js';

const k8s = join(repoRoot, 'deploy', 'kubernetes');
const docs = readdirSync(k8s)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) =>
    parseAllDocuments(readFileSync(join(k8s, f), 'utf8')).map((d) => {
      expect(d.errors, f).toEqual([]);
      return d.toJS() as any;
    }),
  );
const byKind = (kind: string) => docs.filter((d) => d.kind === kind);

describe('deploy/kubernetes', () => {
  it('parses, and kustomization lists every manifest', () => {
    const kustomization = byKind('Kustomization')[0];
    const files = readdirSync(k8s).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.sort());
  });

  it('runs several replicas of serve with readiness on /readyz and liveness on /healthz', () => {
    const [dep] = byKind('Deployment');
    expect(dep.spec.replicas).toBe(3);
    const c = dep.spec.template.spec.containers[0];
    expect(c.args[0]).toBe('serve');
    expect(c.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 'api' });
    expect(c.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 'api' });
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.valueFrom?.secretKeyRef?.name]));
    expect(env).toEqual({ DATABASE_URL: 'dpu-ztp', DPU_ZTP_SECRET_KEY: 'dpu-ztp' });
    const secret = byKind('Secret')[0];
    expect(Object.keys(secret.stringData).sort()).toEqual(['DATABASE_URL', 'DPU_ZTP_SECRET_KEY']);
    const svc = byKind('Service')[0];
    expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
    expect(svc.spec.ports.map((p: any) => p.targetPort).sort()).toEqual(
      c.ports.map((p: any) => p.name).sort(),
    );
  });

  it('mounts a ReadWriteMany volume where images-dir points; every config key is a setting', () => {
    const [dep] = byKind('Deployment');
    const [pvc] = byKind('PersistentVolumeClaim');
    expect(pvc.spec.accessModes).toEqual(['ReadWriteMany']);
    const pod = dep.spec.template.spec;
    const vol = pod.volumes.find((v: any) => v.persistentVolumeClaim?.claimName === pvc.metadata.name);
    const config = JSON.parse(byKind('ConfigMap')[0].data['config.json']);
    const mount = pod.containers[0].volumeMounts.find((m: any) => m.name === vol.name);
    expect(mount.mountPath).toBe(config['images-dir']);
    const flags = new Set(SETTINGS.map((s) => s.flag));
    for (const key of Object.keys(config)) expect(flags, key).toContain(key);
  });
});

// Optional (the brief's "if available"): systemd is not part of the CI image's contract.
describe.skipIf(!which('systemd-analyze'))('deploy/systemd', () => {
  it('the unit passes systemd-analyze verify', () => {
    const unit = readFileSync(join(repoRoot, 'deploy', 'systemd', 'dpu-ztp.service'), 'utf8');
    expect(unit).toMatch(/^EnvironmentFile=/m);
    expect(unit).toMatch(/^Environment=DPU_ZTP_SECRET_KEY_FILE=/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/dpu-ztp serve$/m);
    const dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-unit-'));
    const path = join(dir, 'dpu-ztp.service');
    writeFileSync(path, unit.replace('/usr/bin/dpu-ztp serve', `${process.execPath} ${dpuZtpBin} serve`));
    const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

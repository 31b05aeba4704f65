/**
 * The fleet benchmark's BMCs and devices, in their own process (as real BMCs
 * and DPUs are other machines): N emulated BMCs (alternating virtual media and
 * BlueField image push, delays low), and for each, when its system boots the
 * installer, a device that does what the agent does on the wire — mTLS with
 * its IDevID, get-bootstrapping-data, then report-progress
 * bootstrap-initiated and bootstrap-complete.
 *
 * Protocol: argv = pki dir, then serials. Prints `{"urls": {...serial: url}}`
 * once listening; reads the device listener URL(s) as one line on stdin (several,
 * space-separated, for several replicas: device i talks to URL i mod n); prints
 * `{"done": n}` lines as devices finish; exits on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type BmcEmulator, startBmcEmulator } from '../redfish/index.js';

const [pkiDir, ...serials] = process.argv.slice(2) as [string, ...string[]];
const ca = readFileSync(join(pkiDir, 'tls-ca.crt'), 'utf8');
let devices: URL[] = [];
const deviceReady = new Promise<URL[]>((resolve) => {
  createInterface({ input: process.stdin }).on('line', (l) => {
    devices = l
      .trim()
      .split(/\s+/)
      .map((u) => new URL(u));
    resolve(devices);
  });
});
const index = new Map(serials.map((s, i) => [s, i]));

function rpc(serial: string, op: string, input: Record<string, unknown>): Promise<number> {
  const d = devices[(index.get(serial) ?? 0) % devices.length] as URL;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: d.hostname,
        port: d.port,
        method: 'POST',
        path: `/restconf/operations/ietf-sztp-bootstrap-server:${op}`,
        ca,
        cert: readFileSync(join(pkiDir, 'devices', serial, 'idevid.crt')),
        key: readFileSync(join(pkiDir, 'devices', serial, 'idevid.key')),
        servername: 'localhost',
        agent: false,
        headers: { 'content-type': 'application/yang-data+json', accept: 'application/yang-data+json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          if (text.length < 2000) text += c.toString();
        });
        res.on('end', () => {
          if ((res.statusCode ?? 0) >= 400)
            process.stderr.write(`${serial} ${op}: ${res.statusCode} ${text}\n`);
          resolve(res.statusCode ?? 0);
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ 'ietf-sztp-bootstrap-server:input': input }));
  });
}

let done = 0;
async function actAsDevice(serial: string): Promise<void> {
  await deviceReady;
  const got = await rpc(serial, 'get-bootstrapping-data', { 'signed-data-preferred': [null] });
  if (got !== 200) throw new Error(`${serial}: get-bootstrapping-data ${got}`);
  for (const t of ['bootstrap-initiated', 'bootstrap-complete']) {
    const s = await rpc(serial, 'report-progress', { 'progress-type': t });
    if (s !== 204) throw new Error(`${serial}: report-progress ${t} ${s}`);
  }
  process.stdout.write(`${JSON.stringify({ done: ++done })}\n`);
}

const emus: BmcEmulator[] = [];
const urls: Record<string, string> = {};
for (const [i, serial] of serials.entries()) {
  const emu = await startBmcEmulator({
    persona: i % 2 === 0 ? 'generic' : 'bluefield',
    serial,
    username: 'admin',
    password: 'secret',
    powerTransitionMs: 20,
    taskDurationMs: 20,
    osBootMs: 20,
    recordRequests: false,
    onBoot: (e) => {
      if ('error' in e.fetch) return;
      actAsDevice(serial).catch((err) => process.stderr.write(`${(err as Error).message}\n`));
    },
  });
  emus.push(emu);
  urls[serial] = emu.url;
}
process.stdout.write(`${JSON.stringify({ urls })}\n`);
process.once('SIGTERM', async () => {
  for (const e of emus) await e.close();
  process.exit(0);
});

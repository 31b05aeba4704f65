/**
 * `npm run bench`: runs every `bench/*.bench.js` module (compiled) in turn and
 * prints one JSON line per result. Select some with `BENCH=name1,name2`.
 * Each module default-exports `async (report) => void`.
 */
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** One benchmark result line. `name` identifies the measurement. */
export type BenchResult = { name: string } & Record<string, unknown>;
/** What a bench module receives: print one result line. */
export type Report = (result: BenchResult) => void;

const here = dirname(fileURLToPath(import.meta.url));
const only = (process.env.BENCH ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const files = (await readdir(here)).filter((f) => f.endsWith('.bench.js')).sort();
let failed = 0;
for (const f of files) {
  const id = f.replace(/\.bench\.js$/, '');
  if (only.length > 0 && !only.includes(id)) continue;
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: (r: Report) => Promise<void> };
  try {
    await mod.default((r) => process.stdout.write(`${JSON.stringify({ bench: id, ...r })}\n`));
  } catch (err) {
    failed++;
    process.stdout.write(`${JSON.stringify({ bench: id, error: String((err as Error)?.stack ?? err) })}\n`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;

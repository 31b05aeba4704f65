/**
 * The benchmarks' way to start `dpu-ztp serve`: the spawner lives in cli/
 * (`dpu-ztp demo` starts the service the same way); this wrapper adds
 * `BENCH_SERVE_NODE_ARGS` — extra node flags for the serve process only (e.g.
 * `--cpu-prof`) — and is what the benchmarks and test/helpers/serve.ts import.
 */
import {
  type ServeChild,
  type SpawnServeOptions,
  spawnServe as spawnServeChild,
} from '../cli/serve-child.js';

export { dpuZtpBin, type ServeChild, type SpawnServeOptions } from '../cli/serve-child.js';

/** {@link spawnServeChild} with `BENCH_SERVE_NODE_ARGS` as the serve process's node flags. */
export function spawnServe(
  args: string[],
  env: NodeJS.ProcessEnv,
  options: SpawnServeOptions | number = {},
): Promise<ServeChild> {
  const o = typeof options === 'number' ? { timeoutMs: options } : options;
  const nodeArgs = (process.env.BENCH_SERVE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  return spawnServeChild(args, env, { ...o, ...(nodeArgs.length ? { nodeArgs } : {}) });
}

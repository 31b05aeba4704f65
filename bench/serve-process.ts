/**
 * The benchmarks' way to start `dpu-ztp serve`: the spawner lives in cli/
 * (`dpu-ztp demo` starts the service the same way); re-exported here so the
 * benchmarks and test/helpers/serve.ts keep one import.
 */
export { dpuZtpBin, type ServeChild, type SpawnServeOptions, spawnServe } from '../cli/serve-child.js';

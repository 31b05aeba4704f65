/** Reads the version from package.json next to the compiled tree (or the source tree). */
import { readFileSync } from 'node:fs';

/** The package version, or `0.0.0` when package.json cannot be found (e.g. inside the agent bundle). */
export function readPackageVersion(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'dpu-ztp' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}

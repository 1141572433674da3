// node:fs plus a minimal globSync for Node < 22. The conformance packages use
// it once, as globSync('**/checks.json', { cwd }), to collect result files, so
// this supports `**`, `*` and `?` over relative paths and the `cwd` option;
// nothing else (no braces, classes, negation or exclude).
import { readdirSync } from 'node:fs';
import { sep } from 'node:path';

export * from 'node:fs';
export { default } from 'node:fs';

// globToRegExp turns a glob into an anchored RegExp over '/'-separated paths.
function globToRegExp(glob) {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') {
        i++;
        re += '(?:.*/)?'; // `**/` matches zero or more directories
      } else {
        re += '.*';
      }
    } else if (c === '*') {
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else {
      re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

// globSync returns the paths under options.cwd (default: process.cwd())
// matching pattern (a string or an array of strings), relative to cwd like
// Node's own globSync.
export function globSync(pattern, options = {}) {
  const cwd = options.cwd ?? process.cwd();
  const res = [pattern].flat().map(globToRegExp);
  let entries;
  try {
    entries = readdirSync(cwd, { recursive: true });
  } catch {
    return []; // like Node's globSync: a missing cwd matches nothing
  }
  return entries
    .map((p) => String(p))
    .filter((p) => res.some((re) => re.test(p.split(sep).join('/'))));
}

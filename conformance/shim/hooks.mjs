// Resolve hook: the conformance packages import `globSync` from `fs`, which
// Node added in v22. On older Node, imports of `fs`/`node:fs` made from those
// packages' dist/ resolve to fs.mjs (node:fs plus a small globSync) instead.
// Every other importer, and Node 22+, gets the real module.
import fs from 'node:fs';

const shimURL = new URL('./fs.mjs', import.meta.url).href;

// The packages as installed by conformance/package.json: the stable release
// under its own name, the alpha under the npm alias `conformance-alpha`.
const conformanceDist =
  /\/node_modules\/(?:@modelcontextprotocol\/conformance|conformance-alpha)\/dist\//;

export async function resolve(specifier, context, nextResolve) {
  if (
    typeof fs.globSync !== 'function' &&
    (specifier === 'fs' || specifier === 'node:fs') &&
    conformanceDist.test(context.parentURL ?? '')
  ) {
    return { url: shimURL, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

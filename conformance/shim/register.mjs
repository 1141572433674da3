// Entry point for `node --import ./shim/register.mjs`: installs the resolve
// hook in hooks.mjs so the conformance packages run on Node 20.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);

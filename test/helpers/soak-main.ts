/** Entry of the soak under vite-node (scripts/soak.mjs starts it with the parsed options). */
import { soak, type SoakOptions } from './soak.js';

const o = JSON.parse(process.env.BATON_SOAK_OPTIONS ?? '{}') as SoakOptions;
if (process.getuid?.() !== 0) {
  process.stderr.write('soak: needs root (it builds a lab of namespaces); nothing was done\n');
  process.exit(2);
}
const { exitCode } = await soak(o);
process.exit(exitCode);

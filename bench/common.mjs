// What every lab bench starts with: the built command, root, the lab's up and down, and the
// medians it prints. A bench runs from dist/ (`npm run build` first) as root.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const cli = path.join(root, 'dist/cli/main.js');

/** Exits 2 with a line naming the bench when dist/ is missing or it does not run as root; the lab's up and down. */
export async function labBench(name) {
  if (!existsSync(cli)) {
    console.error(`bench/${name}: dist/ is missing; run \`npm run build\` first`);
    process.exit(2);
  }
  if (process.getuid?.() !== 0) {
    console.error(`bench/${name}: the lab needs root; run as root`);
    process.exit(2);
  }
  const { labUp } = await import(new URL('../dist/lab/up.js', import.meta.url).href);
  const { labDown } = await import(new URL('../dist/lab/down.js', import.meta.url).href);
  return { labUp, labDown };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** `median 812 ms (min 780, max 1034, n=4)` */
export function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${median(s).toFixed(0)} ms (min ${s[0].toFixed(0)}, max ${s.at(-1).toFixed(0)}, n=${s.length})`;
}

/** The machine's load averages, printed beside each figure: other work on the machine moves them. */
export const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

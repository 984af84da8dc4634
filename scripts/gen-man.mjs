// Write dist/man/baton.1 from the built CLI's own command definitions (`baton man`), so the man
// page npm installs with the package says what `baton --help` says. Run by `npm pack` (prepack).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const page = execFileSync(process.execPath, [path.join(root, 'dist/cli/main.js'), 'man'], { encoding: 'utf8' });
mkdirSync(path.join(root, 'dist/man'), { recursive: true });
writeFileSync(path.join(root, 'dist/man/baton.1'), page);
console.log(`gen-man: ${page.split('\n').length} lines -> dist/man/baton.1`);

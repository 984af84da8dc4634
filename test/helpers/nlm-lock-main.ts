/**
 * Entry for `ip netns exec CLIENT node vite-node.mjs test/helpers/nlm-lock-main.ts JSON`: take one
 * NLM lock from the client's namespace and print the result as JSON (test/helpers/nlm-client.ts).
 */
import { nlmLock } from './nlm-client.js';

const o = JSON.parse(process.argv[2] ?? '{}') as { server: string; exportPath: string; file: string; caller: string };
nlmLock(o).then(
  (r) => console.log(JSON.stringify(r)),
  (e: Error) => {
    console.error(e.message);
    process.exit(1);
  },
);

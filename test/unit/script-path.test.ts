import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { packageRoot, scriptPath } from '../../src/util/paths.js';

// Where baton finds a script it starts as its own process (the keeper, the probe agents): the
// keeper's `./main.js` beside a bundled chunk is the bundled command itself, never the keeper.
describe('scriptPath', () => {
  it('from a bundled chunk: the script under dist/, even where the bundle has a file of that name', () => {
    const chunk = pathToFileURL(path.join(packageRoot, 'dist', 'bundle', 'chunk-ABC.js')).href;
    expect(scriptPath(chunk, 'transport/keeper/main.js')).toBe(path.join(packageRoot, 'dist', 'transport', 'keeper', 'main.js'));
  });

  it("from tsc's tree (or a copy of it): the neighbour, when it is there", () => {
    const me = pathToFileURL(path.join(packageRoot, 'src', 'util', 'x.ts')).href;
    expect(scriptPath(me, 'util/paths.ts')).toBe(path.join(packageRoot, 'src', 'util', 'paths.ts'));
    expect(scriptPath(me, 'drill/no-such-agent.js')).toBe(path.join(packageRoot, 'dist', 'drill', 'no-such-agent.js'));
  });
});

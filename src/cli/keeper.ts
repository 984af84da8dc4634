import type { Command } from 'commander';

/**
 * `baton keeper status|stop`: the background holder of SSH connections that
 * `baton check --persist` starts. Its modules load inside the actions, like the lab's.
 */

function ago(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

async function status(opts: { json?: boolean }): Promise<number> {
  const { keeperStatus, keeperPid } = await import('../transport/keeper/client.js');
  const { socketPath } = await import('../transport/keeper/paths.js');
  const st = await keeperStatus();
  if (opts.json) {
    process.stdout.write(JSON.stringify(st ? { running: true, socket: socketPath(), ...st } : { running: false, socket: socketPath() }) + '\n');
    return st ? 0 : 1;
  }
  if (!st) {
    const pid = keeperPid();
    process.stdout.write(`no keeper is running (socket ${socketPath()})${pid ? `; a stale pid file names ${pid}, \`baton keeper stop\` clears it` : ''}\n`);
    return 1;
  }
  const now = Date.now();
  const lines = [
    `keeper running, pid ${st.pid}, socket ${socketPath()}`,
    `exits after ${st.idleSeconds} s without a request (last request ${ago(now - st.lastRequestAt)}, started ${ago(now - st.startedAt)})`,
    `${st.connections.filter((c) => c.connected).length} of ${st.connections.length} connection(s) held:`,
    ...st.connections.map((c) => `  ${c.host}  ${c.target}  ${c.connected ? 'connected' : 'not connected'}, last used ${ago(now - c.lastUsedAt)}`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

async function stop(): Promise<number> {
  const { keeperStatus, keeperPid } = await import('../transport/keeper/client.js');
  const { socketPath, pidPath } = await import('../transport/keeper/paths.js');
  const { rmSync } = await import('node:fs');
  const st = await keeperStatus();
  const pid = st?.pid ?? keeperPid();
  if (!pid) {
    process.stdout.write('no keeper is running\n');
    return 0;
  }
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!st && !alive()) {
    // A keeper killed hard leaves its files behind; a pid that may since belong to another
    // process is not signalled.
    rmSync(socketPath(), { force: true });
    rmSync(pidPath(), { force: true });
    process.stdout.write(`no keeper is running; removed the stale files of pid ${pid}\n`);
    return 0;
  }
  if (!st) {
    process.stderr.write(
      `baton: the keeper pid file names ${pid}, which is running but does not answer on ${socketPath()}; ` +
        `not signalling a process that may not be the keeper. Check it with \`ps -p ${pid} -o args\` and kill it yourself if it is.\n`,
    );
    return 1;
  }
  process.kill(pid, 'SIGTERM');
  const end = Date.now() + 5000;
  while (alive() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (alive()) {
    process.stderr.write(`baton: keeper ${pid} did not exit within 5 s of SIGTERM; kill -KILL ${pid} if it still runs\n`);
    return 1;
  }
  process.stdout.write(`keeper ${pid} stopped; its ${st.connections.length} connection(s) are closed\n`);
  return 0;
}

export function registerKeeper(program: Command): void {
  const keeper = program.command('keeper').description('the background holder of SSH connections that `check --persist` starts');
  keeper
    .command('status')
    .description('whether a keeper runs, its pid, idle timeout and held connections (exit 1 when none runs)')
    .option('--json', 'one JSON object')
    .action(async (opts) => {
      process.exitCode = await status(opts);
    });
  keeper
    .command('stop')
    .description('stop the keeper (SIGTERM): it closes its connections and removes its socket')
    .action(async () => {
      process.exitCode = await stop();
    });
}

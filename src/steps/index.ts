import type { StepKind } from './contract.js';
import { command } from './command.js';
import { waitFor } from './wait-for.js';
import { assertStep } from './assert.js';
import { fence } from './fence.js';
import { unfence } from './unfence.js';
import { raiseVip } from './raise-vip.js';
import { lowerVip } from './lower-vip.js';
import { garp } from './garp.js';
import { exportStep } from './export.js';
import { unexportStep } from './unexport.js';
import { restartStatd } from './restart-statd.js';
import { importVolume } from './import-volume.js';
import { deportVolume } from './deport-volume.js';
import { mountStep } from './mount.js';
import { unmountStep } from './unmount.js';
import { promoteStep } from './promote.js';
import { demoteStep } from './demote.js';
import { vipHolder } from './vip-holder.js';
import { mounted } from './mounted.js';
import { exported } from './exported.js';
import { serviceRunning } from './service-running.js';
import { nfsNull } from './nfs-null.js';
import { tcp } from './tcp.js';
import { diskFree } from './disk-free.js';
import { fenceDevice } from './fence-device.js';

/** Every step kind baton ships. One line per kind; the engine never names one. */
export const allKinds: StepKind[] = [command, waitFor, assertStep, raiseVip, lowerVip, garp, fence, unfence, exportStep, unexportStep, restartStatd, importVolume, deportVolume, mountStep, unmountStep, promoteStep, demoteStep, vipHolder, mounted, exported, serviceRunning, nfsNull, tcp, diskFree, fenceDevice];

/** Loop provider: a shared image file attached as a loop device (the lab's SAN disks). */
import { StepRefusedError, batchedOk } from '../contract.js';
import { LOOP_CLAIM_DIR, loopStateOf, parseMountinfo, parseStorageView, readLoopState, storageViewArgv, type LoopState } from '../../facts/storage.js';
import { runBatch } from '../../transport/batch.js';
import { need, type VolumeProvider } from './provider.js';

export const loopImportArgv = (image: string): string[] => ['losetup', '--nooverlap', '--find', '--show', image];
export const loopDetachArgv = (device: string): string[] => ['losetup', '--detach', device];

/**
 * Attach (`losetup --nooverlap --find --show`) and write this node's claim on the device; prints
 * the device. Attaches on one node take turns under an flock: losetup calls that race for the
 * same free device lose with EBUSY and retry after a 200 ms sleep (util-linux sys-utils/losetup.c,
 * create_loop), so 8 groups landing at once took up to 870 ms to attach, one after another by
 * 200 ms steps; in turns, 8 attaches take some 40 ms (docs/speed.md).
 */
const ATTACH = `trap '' HUP PIPE
D=$1 I=$2
[ -d "$D" ] || mkdir -p -- "$D" || exit 1
exec 9>"$D.attach-lock" && flock -w 30 9 || { echo "another attach held $D.attach-lock for 30 s" >&2; exit 1; }
d=$(losetup --nooverlap --find --show "$I") || exit 1
case $d in /dev/loop[0-9]*) ;; *) printf '%s\\n' "$d"; exit 0 ;; esac
{ [ -d "$D" ] || mkdir -p -- "$D"; } && printf '%s\\n' "$I" > "$D/\${d#/dev/}" && printf '%s\\n' "$d"`;

export const loopAttachArgv = (image: string): string[] => ['sh', '-c', ATTACH, 'baton-attach', LOOP_CLAIM_DIR, image];

/**
 * Detach this node's devices of an image. Exit 4 with their mountinfo lines when one is mounted
 * here (nothing detached); exit 5 with the device when it is still attached 2 s after the detach
 * (`losetup -d` on a busy device only sets autoclear and exits 0; the claim is put back). A
 * short-lived opener (udev's probe of a device whose mount just failed, seen in the lab) lets go
 * within milliseconds and autoclear then removes the device: the check waits for that. A device
 * someone else detached in between is what we want.
 *
 * The claim goes first, and the script ignores hang-ups: a controller killed mid-step must not
 * leave a claim on a device that is gone, which a node sharing the kernel (containers, the lab)
 * may attach next under the same name: the claim would make this node look like its holder. A
 * device left attached with no claim is harmless: the next attach of the image reuses it.
 */
const DETACH = `trap '' HUP PIPE
D=$1 I=$2
shift 2
m=
while IFS= read -r l; do
  r=\${l#* - }
  [ "$r" = "$l" ] && continue
  r=\${r#* }
  for d in "$@"; do [ "\${r%% *}" = "$d" ] && m="$m$l
"; done
done < /proc/self/mountinfo
if [ -n "$m" ]; then printf '%s' "$m"; exit 4; fi
backing() {
  b=
  if [ -d /sys/block ]; then
    [ -r "/sys/block/\${1#/dev/}/loop/backing_file" ] && IFS= read -r b < "/sys/block/\${1#/dev/}/loop/backing_file"
  else
    b=$(losetup --list --noheadings --output BACK-FILE "$1" 2>/dev/null)
  fi
  return 0
}
for d in "$@"; do
  rm -f -- "$D/\${d#/dev/}"
  err=$(losetup --detach "$d" 2>&1) || case $err in *"No such device"*) ;; *) printf '%s\\n' "$I" > "$D/\${d#/dev/}"; printf '%s\\n' "$err" >&2; exit 1 ;; esac
  i=0
  while backing "$d"; case $b in "$I"|"$I "*) true ;; *) false ;; esac; do
    [ "$i" -ge 40 ] && { printf '%s\\n' "$I" > "$D/\${d#/dev/}"; echo "$d"; exit 5; }
    i=$((i + 1)); sleep 0.05
  done
done`;

export const loopDetachAllArgv = (image: string, devices: string[]): string[] => ['sh', '-c', DETACH, 'baton-detach', LOOP_CLAIM_DIR, image, ...devices];

export const loopProvider: VolumeProvider<LoopState> = {
  label: (a) => `loop image ${need(a, 'image')}`,

  probe: (run, a) => readLoopState(run, need(a, 'image')),

  imported: (o) => o.held.length > 0,

  async importHere(ctx, a) {
    const image = need(a, 'image');
    // --nooverlap reuses a device already backed by the image instead of attaching a second one
    // (two devices on one ext4 image mounted twice would corrupt it). Attach and claim: one exec.
    // The step's probe (the storage view) follows in the same exec: one round trip less.
    const attach = loopAttachArgv(image);
    const [attached, view] = await runBatch((argv, o) => ctx.run(argv, o), [{ argv: attach }, { argv: storageViewArgv() }]);
    const device = batchedOk(ctx.host.name, attached, attach).stdout.trim();
    if (!/^\/dev\/loop\d+$/.test(device)) throw new Error(`on ${ctx.host.name}: \`${loopImportArgv(image).join(' ')}\` printed "${device}", not a loop device`);
    return view?.code === 0 ? loopStateOf(parseStorageView(view.stdout), image) : undefined;
  },

  async deportHere(ctx, a, now) {
    const image = need(a, 'image');
    if (!now.held.length) return;
    // Refuse-if-mounted, detach, verify and drop the claim: one exec (each round trip is time
    // the clients wait).
    const detach = loopDetachAllArgv(image, now.held);
    const [detached, view] = await runBatch((argv, o) => ctx.run(argv, o), [{ argv: detach, mayFail: true }, { argv: storageViewArgv() }]);
    const r = detached ?? batchedOk(ctx.host.name, detached, detach);
    if (r.code === 4) {
      const mounts = parseMountinfo(r.stdout);
      const where = (dev: string) => mounts.filter((m) => m.source === dev).map((m) => m.mountPoint);
      const dev = now.held.find((d) => where(d).length) ?? now.held[0]!;
      throw new StepRefusedError(`${ctx.host.name}: will not detach ${dev} (${image}): it is mounted on ${where(dev).join(', ')}; unmount it first (an unmount step before deport_volume)`);
    }
    if (r.code === 5) {
      const dev = r.stdout.trim();
      throw new Error(
        `on ${ctx.host.name}: ${dev} (${image}) is still attached after \`losetup --detach ${dev}\`: something still holds it open ` +
          `(a mount in another namespace, a process with the device open); find it with \`lsof ${dev}\` or \`findmnt ${dev}\`, release it, and re-run`,
      );
    }
    batchedOk(ctx.host.name, r, detach);
    return view?.code === 0 ? loopStateOf(parseStorageView(view.stdout), image) : undefined;
  },

  importArgv: (a) => [loopImportArgv(need(a, 'image'))],
  deportArgv: () => [['losetup', '--detach', 'DEVICE']],
};

/**
 * The node half of the command agent (ssh-agent-mux.ts): a loop started once per connection that
 * starts each command it is sent, directly (no shell), in a session of its own, and sends each
 * result back as one frame the moment the command ended and its output pipes closed (the frames
 * of commands that end in one turn of its loop in one write: each write is an SSH packet for sshd
 * to encrypt and baton to read).
 *
 * Two implementations of one protocol. `AGENT_PYTHON` first, where the node has a python3 with
 * os.posix_spawnp (3.8 and later): posix_spawn starts a command without copying the agent's page
 * tables (glibc uses a vfork-style clone), where Perl's fork copies them and then takes a
 * copy-on-write fault, and on a virtual machine a TLB shootdown across CPUs, for each page either
 * process touches until the exec. Measured on this project's machine (a 2-core Firecracker guest):
 * 400 concurrent `sh -c` commands took 2.9 s through the Python agent and 9.0 s through the Perl
 * one; in a move of eight service groups the Perl agent was a third of all CPU on the nodes.
 * `AGENT_SCRIPT` (Perl) where there is no such python: perl-base is Essential on Debian and Ubuntu
 * and present on every RHEL-family system with a package manager; only modules of perl-base are
 * used (POSIX, IO::Select). A node with neither keeps one SSH channel per command.
 *
 * Requests, one line each, words hex-encoded (so any byte but NUL travels):
 *   R ID ENV... -- ARGV...   run ARGV with ENV (NAME=VALUE words) added to the agent's environment
 *   Q ID ENV... -- F ARGV... F ARGV...
 *                            the commands of a batch (transport/batch.ts) one after another, each
 *                            after an F word: `f` (the batch goes on if it fails) or `s`, then its
 *                            number of ARGV words; answered as the batch's sh script would print
 *   K ID GRACE               TERM the command's process group; KILL it GRACE tenths of a second later
 * Answers: `B ready` once, then per command
 *   \nB ID c STATUS\n or \nB ID s SIGNAL\n, STDOUT, \nB e\n, STDERR, \nB .\n
 * where B is the boundary the client chose for this agent (random, 128 bits). A command that
 * cannot be started (not found) ends with status 127 and `ARGV0: REASON` on stderr.
 */
export const AGENT_SCRIPT = String.raw`use strict; use warnings; use POSIX (); use IO::Select;
my $B = shift @ARGV;
binmode STDIN; binmode STDOUT;
$SIG{PIPE} = 'IGNORE';
my $TICK = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
sub now { (POSIX::times())[0] / $TICK }
pipe(my $wr, my $ww) or die "pipe: $!";
{ my $o = select($ww); $| = 1; select($o); }
$SIG{CHLD} = sub { syswrite($ww, 'x') };
my $sel = IO::Select->new(\*STDIN, $wr);
my (%job, %fh, %pid, @kills);
my $in = '';
my $obuf = '';
sub out { $obuf .= shift; }
# A write that blocks (sshd reads slowly) is interrupted by the next SIGCHLD: EINTR is not an
# end, and neither is a full non-blocking pipe; anything else is (the channel is gone).
sub again { my $e = $! + 0; return $e == POSIX::EINTR() || $e == POSIX::EAGAIN(); }
sub writable { my $w = ''; vec($w, fileno(STDOUT), 1) = 1; select(undef, $w, undef, 1); }
sub flush { my $o = 0; while ($o < length $obuf) { my $n = syswrite(STDOUT, $obuf, length($obuf) - $o, $o); unless (defined $n) { exit 0 unless again(); writable(); next; } $o += $n; } $obuf = ''; }
sub finish {
  my $id = shift; my $j = $job{$id};
  return unless $j && $j->{open} == 0 && defined $j->{status};
  while (my $q = $j->{q}) {
    # Killed: it ends as the batch's sh did, of SIGTERM, before the killed command's status line.
    if ($q->{killed}) { $j->{status} = 15; last; }
    my $st = $j->{status};
    my $rc = ($st & 127) ? 128 + ($st & 127) : $st >> 8;
    my $n = $q->{n}++;
    $j->{out} .= "\n--baton-batch-rc-$n-- $rc\n";
    if ($q->{n} >= @{$q->{cmds}} || ($rc && !$q->{cmds}[$n][0])) { $j->{status} = 0; last; }
    step($id);
    return unless defined $j->{status};
  }
  delete $job{$id};
  my $st = $j->{status};
  my $h = ($st & 127) ? 's ' . ($st & 127) : 'c ' . ($st >> 8);
  out("\n$B $id $h\n$j->{out}\n$B e\n$j->{err}\n$B .\n");
}
sub decode {
  my @w = map { pack 'H*', $_ } @_;
  my %env; my $i = 0;
  while ($i < @w && $w[$i] ne '--') { my ($k, $v) = split /=/, $w[$i], 2; $env{$k} = $v; $i++; }
  return (\%env, @w[$i + 1 .. $#w]);
}
sub launch {
  my ($id, $env, @argv) = @_;
  my $j = $job{$id};
  my ($or, $ow, $er, $ew);
  unless (@argv && pipe($or, $ow) && pipe($er, $ew)) { $j->{err} .= "baton agent: cannot start: $!\n"; $j->{status} = 126 << 8; return; }
  my $pid = fork;
  unless (defined $pid) { $j->{err} .= "baton agent: fork: $!\n"; $j->{status} = 126 << 8; close $_ for $or, $ow, $er, $ew; return; }
  if ($pid == 0) {
    POSIX::setsid();
    $SIG{PIPE} = 'DEFAULT'; $SIG{CHLD} = 'DEFAULT';
    open(STDIN, '<', '/dev/null'); open(STDOUT, '>&', $ow); open(STDERR, '>&', $ew);
    @ENV{keys %$env} = values %$env;
    { no warnings 'exec'; exec { $argv[0] } @argv; }
    print STDERR "$argv[0]: $!\n";
    POSIX::_exit(127);
  }
  close $ow; close $ew;
  @$j{qw(pid open status)} = ($pid, 2, undef);
  $fh{fileno $or} = [$id, 'out']; $fh{fileno $er} = [$id, 'err'];
  $sel->add($or, $er);
  $pid{$pid} = $id;
}
sub start {
  my ($id, @w) = @_;
  my ($env, @argv) = decode(@w);
  $job{$id} = { out => '', err => '', open => 0 };
  launch($id, $env, @argv);
  finish($id);
}
# Q: the commands of a batch (transport/batch.ts), one after another, with the markers its sh
# script prints, so the answer reads the same; without the sh and its fork per command.
sub batch {
  my ($id, @w) = @_;
  my ($env, @rest) = decode(@w);
  my @cmds;
  while (@rest) { my $f = shift @rest; my $n = substr($f, 1) || 0; push @cmds, [substr($f, 0, 1) eq 'f', [splice(@rest, 0, $n)]]; }
  $job{$id} = { out => '', err => '', open => 0, q => { cmds => \@cmds, n => 0, env => $env } };
  if (@cmds) { step($id); } else { $job{$id}{status} = 0; }
  finish($id);
}
sub step {
  my $id = shift; my $j = $job{$id}; my $q = $j->{q}; my $n = $q->{n};
  $j->{out} .= "\n--baton-batch-out-$n--\n";
  $j->{err} .= "\n--baton-batch-err-$n--\n";
  launch($id, $q->{env}, @{$q->{cmds}[$n][1]});
}
sub request {
  my $l = shift;
  if ($l =~ /^([RQ]) (\d+) ?(.*)$/) { my ($op, $id, $w) = ($1, $2, $3); ($op eq 'R' ? \&start : \&batch)->($id, split(/ /, $w, -1)); }
  elsif ($l =~ /^K (\d+) (\d+)$/) {
    my $j = $job{$1}; return unless $j && $j->{pid};
    $j->{q}{killed} = 1 if $j->{q};
    kill 'TERM', -$j->{pid};
    push @kills, [now() + $2 / 10, $j->{pid}];
  }
}
out("$B ready\n"); flush();
while (1) {
  my $wait = 5;
  if (@kills) { my $d = $kills[0][0] - now(); $wait = $d < 0 ? 0 : $d; }
  for my $r ($sel->can_read($wait)) {
    if ($r == \*STDIN) {
      my $n = sysread(STDIN, my $buf, 65536);
      next if !defined $n && again();
      unless ($n) { flush(); exit 0; }
      $in .= $buf;
      while ($in =~ s/^([^\n]*)\n//) { request($1); }
    } elsif ($r == $wr) {
      sysread($wr, my $x, 512);
    } else {
      my $f = $fh{fileno $r};
      my $n = sysread($r, my $buf, 65536);
      next if !defined $n && again();
      if ($n) { $job{$f->[0]}{$f->[1]} .= $buf; next; }
      $sel->remove($r); delete $fh{fileno $r}; close $r;
      $job{$f->[0]}{open}--;
      finish($f->[0]);
    }
  }
  while ((my $p = waitpid(-1, POSIX::WNOHANG())) > 0) {
    my $id = delete $pid{$p};
    next unless defined $id && $job{$id};
    $job{$id}{status} = $?;
    finish($id);
  }
  while (@kills && $kills[0][0] <= now()) { my $k = shift @kills; kill 'KILL', -$k->[1]; }
  flush();
}
`;

/**
 * The Python agent: argv is PERL PERL_SCRIPT BOUNDARY (the boundary last, as in the Perl agent's
 * command line, so both are found the same way on the node); a python3 older than 3.8 execs the
 * Perl agent in its place before it says ready.
 */
export const AGENT_PYTHON = String.raw`import errno, os, sys, signal, select, selectors, time
B = os.fsencode(sys.argv[-1])
# The environment the agent was started with: Python adds LC_CTYPE to its own when the locale is C
# (PEP 538), and the commands must not see it.
try:
    with open('/proc/self/environ', 'rb') as f:
        ENV = dict(x.partition(b'=')[::2] for x in f.read().split(b'\0') if x)
except OSError:
    ENV = dict(os.environb)
DEFAULT = [signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGINT]

def perl():
    # Python ignores these and an exec keeps what is ignored; Perl's commands must not inherit it.
    for n in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(n, signal.SIG_DFL)
    os.execvpe(sys.argv[1], [sys.argv[1], '-e', sys.argv[2], '--', sys.argv[-1]], ENV)

if not hasattr(os, 'posix_spawnp'):
    perl()
try:
    # One start as every command's, before saying ready: a python whose posix_spawn lacks setsid
    # (glibc before 2.26) hands over to Perl now, not fail every command later.
    os.waitpid(os.posix_spawnp('true', ['true'], ENV, setsid=True, setsigdef=DEFAULT), 0)
except Exception:
    perl()

def which(name, env):
    if b'/' in name:
        return name
    for d in env.get(b'PATH', b'/usr/local/bin:/usr/bin:/bin').split(b':'):
        p = os.path.join(d or b'.', name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return name

def spawn(argv, env, fa):
    try:
        return os.posix_spawnp(argv[0], argv, env, setsid=True, setsigdef=DEFAULT, file_actions=fa)
    except OSError as e:
        # execvp runs a file without #! with /bin/sh; posix_spawnp does not (ENOEXEC).
        if e.errno != errno.ENOEXEC:
            raise
        return os.posix_spawn(b'/bin/sh', [b'/bin/sh', which(argv[0], env)] + argv[1:], env, setsid=True, setsigdef=DEFAULT, file_actions=fa)
wr, ww = os.pipe()
os.set_blocking(wr, False)
os.set_blocking(ww, False)
signal.set_wakeup_fd(ww)
signal.signal(signal.SIGCHLD, lambda s, f: None)
sel = selectors.DefaultSelector()
sel.register(0, selectors.EVENT_READ, 'in')
sel.register(wr, selectors.EVENT_READ, 'wake')
jobs, pids, kills, obuf = {}, {}, [], []
inbuf = b''

def flush():
    data = memoryview(b''.join(obuf))
    obuf.clear()
    while data:
        try:
            data = data[os.write(1, data):]
        except BlockingIOError:
            select.select([], [1], [], 1)
        except OSError:
            os._exit(0)

def finish(i):
    j = jobs.get(i)
    if not j or j['open'] or j['status'] is None:
        return
    q = j.get('q')
    while q is not None:
        # Killed: it ends as the batch's sh did, of SIGTERM, before the killed command's status line.
        if q['killed']:
            j['status'] = int(signal.SIGTERM)
            break
        st = j['status']
        rc = 128 + (st & 127) if st & 127 else st >> 8
        n = q['n']
        j['out'].append(b'\n--baton-batch-rc-%d-- %d\n' % (n, rc))
        q['n'] = n + 1
        if q['n'] >= len(q['cmds']) or (rc and not q['cmds'][n][0]):
            j['status'] = 0
            break
        step(i)
        if j['status'] is None:
            return
    del jobs[i]
    st = j['status']
    h = b's %d' % (st & 127) if st & 127 else b'c %d' % (st >> 8)
    obuf.append(b'\n%s %s %s\n%s\n%s e\n%s\n%s .\n' % (B, i, h, b''.join(j['out']), B, b''.join(j['err']), B))

def decode(words):
    try:
        w = [bytes.fromhex(x.decode()) for x in words]
    except ValueError:
        w = []
    env = dict(ENV)
    k = 0
    while k < len(w) and w[k] != b'--':
        n, _, v = w[k].partition(b'=')
        env[n] = v
        k += 1
    return env, w[k + 1:]

def launch(i, argv, env):
    j = jobs[i]
    if not argv:
        j['err'].append(b'baton agent: cannot start: no command\n')
        j['status'] = 126 << 8
        return
    orr, ow = os.pipe()
    er, ew = os.pipe()
    try:
        pid = spawn(argv, env, [(os.POSIX_SPAWN_OPEN, 0, '/dev/null', os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, ow, 1), (os.POSIX_SPAWN_DUP2, ew, 2)])
    except Exception as e:
        for f in (orr, ow, er, ew):
            os.close(f)
        # Not found or not runnable: 127, as the Perl agent's exec says; anything else (an
        # argument with a NUL byte) is the agent's own refusal, 126. Either way it keeps serving.
        msg = argv[0] + b': ' + os.fsencode(e.strerror or str(e)) if isinstance(e, OSError) else b'baton agent: cannot start: ' + os.fsencode(str(e))
        j['err'].append(msg + b'\n')
        j['status'] = (127 if isinstance(e, OSError) else 126) << 8
        return
    os.close(ow)
    os.close(ew)
    j.update(pid=pid, open=2, status=None)
    sel.register(orr, selectors.EVENT_READ, (i, 'out'))
    sel.register(er, selectors.EVENT_READ, (i, 'err'))
    pids[pid] = i

def start(i, words):
    env, argv = decode(words)
    jobs[i] = {'out': [], 'err': [], 'open': 0, 'status': None}
    launch(i, argv, env)
    finish(i)

def batch(i, words):
    # Q: the commands of a batch (transport/batch.ts), one after another, with the markers its
    # sh script prints, so the answer reads the same; without the sh and its fork per command.
    env, w = decode(words)
    cmds, k = [], 0
    while k < len(w):
        n = int(w[k][1:] or b'0')
        cmds.append((w[k][:1] == b'f', w[k + 1:k + 1 + n]))
        k += 1 + n
    jobs[i] = {'out': [], 'err': [], 'open': 0, 'status': None, 'q': {'cmds': cmds, 'n': 0, 'env': env, 'killed': False}}
    if cmds:
        step(i)
    else:
        jobs[i]['status'] = 0
    finish(i)

def step(i):
    j = jobs[i]
    q = j['q']
    n = q['n']
    j['out'].append(b'\n--baton-batch-out-%d--\n' % n)
    j['err'].append(b'\n--baton-batch-err-%d--\n' % n)
    launch(i, q['cmds'][n][1], q['env'])

def request(line):
    op, _, rest = line.partition(b' ')
    if op == b'R' or op == b'Q':
        i, _, words = rest.partition(b' ')
        (start if op == b'R' else batch)(i, words.split(b' ') if words else [])
    elif op == b'K':
        i, _, grace = rest.partition(b' ')
        j = jobs.get(i)
        if j and j.get('pid'):
            if 'q' in j:
                j['q']['killed'] = True
            try:
                os.killpg(j['pid'], signal.SIGTERM)
            except OSError:
                pass
            kills.append((time.monotonic() + int(grace) / 10, j['pid']))
            kills.sort()

obuf.append(b'%s ready\n' % B)
flush()
while True:
    wait = 5
    if kills:
        wait = max(0, kills[0][0] - time.monotonic())
    for key, _ in sel.select(wait):
        d = key.data
        if d == 'in':
            buf = os.read(0, 65536)
            if not buf:
                flush()
                os._exit(0)
            inbuf += buf
            *lines, inbuf = inbuf.split(b'\n')
            for l in lines:
                request(l)
        elif d == 'wake':
            try:
                os.read(wr, 512)
            except BlockingIOError:
                pass
        else:
            buf = os.read(key.fd, 65536)
            if buf:
                jobs[d[0]][d[1]].append(buf)
                continue
            sel.unregister(key.fd)
            os.close(key.fd)
            jobs[d[0]]['open'] -= 1
            finish(d[0])
    while pids:
        try:
            p, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if p == 0:
            break
        i = pids.pop(p, None)
        if i is not None and i in jobs:
            jobs[i]['status'] = st
            finish(i)
    while kills and kills[0][0] <= time.monotonic():
        try:
            os.killpg(kills.pop(0)[1], signal.SIGKILL)
        except OSError:
            pass
    flush()
`;

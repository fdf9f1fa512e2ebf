# claimbench.py OLD_SCRIPTS_GO NEW_SCRIPTS_GO: Redis CPU per claim script call
# of 64 transactions, the claimScript of each file, alternated 3 times. Each
# variant sends 3,000 EVALSHA calls with `redis-cli --pipe` to a scratch
# redis-server (no persistence): a first claim by consumer a, then a re-claim
# by consumer b after the lease (the redelivery path), in turn. Redis's CPU
# comes from /proc/<pid>/stat (10 ms ticks: 3.3 µs per call resolution).
#
#   git show a2f1b65:internal/txqueue/scripts.go >/tmp/old.go
#   python3 claimbench.py /tmp/old.go internal/txqueue/scripts.go
import os, re, subprocess, sys, tempfile, time

def script(path):
    s = open(path).read()
    return re.search(r'claimScript = redis.NewScript\(`(.*?)`\)', s, re.S).group(1)

work = tempfile.mkdtemp(prefix='claimbench-')
sock = os.path.join(work, 'r.sock')
subprocess.run(['redis-server', '--port', '0', '--unixsocket', sock, '--dir', work, '--appendonly', 'no',
                '--save', '', '--daemonize', 'yes', '--pidfile', os.path.join(work, 'pid'),
                '--logfile', os.path.join(work, 'log')], check=True)
for _ in range(100):
    if os.path.exists(os.path.join(work, 'pid')) and os.path.exists(sock):
        break
    time.sleep(0.05)
pid = int(open(os.path.join(work, 'pid')).read())

def cli(*a):
    return subprocess.check_output(['redis-cli', '-s', sock] + list(a)).decode().strip()

def cpu():
    f = open('/proc/%d/stat' % pid).read().split()
    return int(f[13]) + int(f[14])

shas = {'old': cli('SCRIPT', 'LOAD', script(sys.argv[1])), 'new': cli('SCRIPT', 'LOAD', script(sys.argv[2]))}
rounds = {'old': ['24'], 'new': ['24', '5']}
N = 3000
NK = int(os.environ.get('NK', '64'))
res = {}
for rep in range(3):
    for name in ('old', 'new'):
        keys = ['tx:%s:%d:%d' % (name, rep, i) for i in range(NK)]
        perkey = (['1', '100', 'USD', '1'] if name == 'old' else ['1', '100', 'USD', '1', '2']) * NK
        base = ['EVALSHA', shas[name], str(NK)] + keys
        first = ['1000', '100000', 'a', '1'] + rounds[name] + perkey
        again = ['2000', '100000', 'b', '1'] + rounds[name] + perkey
        cmds = [base + (first if j % 2 == 0 else again) for j in range(N)]
        payload = ''.join('*%d\r\n' % len(c) + ''.join('$%d\r\n%s\r\n' % (len(x), x) for x in c) for c in cmds).encode()
        c0 = cpu()
        subprocess.run(['redis-cli', '-s', sock, '--pipe'], input=payload, stdout=subprocess.DEVNULL, check=True)
        res.setdefault(name, []).append((cpu() - c0) * 10 * 1000 / N)
print({k: ['%.0f' % v for v in vs] for k, vs in res.items()}, 'µs of Redis CPU per claim call of %d' % NK, '')
cli('SHUTDOWN', 'NOSAVE')

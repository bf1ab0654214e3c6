# A process that takes locks on a file when told to (one command per line on stdin, one
# answer per line on stdout), so that tests can hold, contend for and lose locks:
#   lock ex|sh [nb] [START LEN]   fcntl lock (F_SETLK with nb, else F_SETLKW)
#   flock ex|sh [nb]              flock
#   unlock | funlock              fcntl / flock unlock
#   test [START LEN]              F_GETLK for a write lock: 'none' or 'write START LEN'
#   write TEXT | close            write at the end; close the file (answers the errno of close)
import errno, fcntl, os, struct, sys

fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
def answer(text):
    sys.stdout.write(text + '\n')
    sys.stdout.flush()
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    try:
        cmd = words[0]
        if cmd == 'lock':
            kind = fcntl.LOCK_EX if words[1] == 'ex' else fcntl.LOCK_SH
            nb = 'nb' in words
            nums = [int(w) for w in words[2:] if w.isdigit()]
            start, length = (nums + [0, 0])[:2]
            fcntl.lockf(fd, kind | (fcntl.LOCK_NB if nb else 0), length, start)
        elif cmd == 'flock':
            kind = fcntl.LOCK_EX if words[1] == 'ex' else fcntl.LOCK_SH
            fcntl.flock(fd, kind | (fcntl.LOCK_NB if 'nb' in words else 0))
        elif cmd == 'unlock':
            fcntl.lockf(fd, fcntl.LOCK_UN)
        elif cmd == 'funlock':
            fcntl.flock(fd, fcntl.LOCK_UN)
        elif cmd == 'test':
            nums = [int(w) for w in words[1:]]
            start, length = (nums + [0, 0])[:2]
            raw = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack('hhqqi', fcntl.F_WRLCK, os.SEEK_SET, start, length, 0))
            t, _, s, l, _ = struct.unpack('hhqqi', raw)
            answer('none' if t == fcntl.F_UNLCK else '%s %d %d' % ('write' if t == fcntl.F_WRLCK else 'read', s, l))
            continue
        elif cmd == 'write':
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, (' '.join(words[1:]) + '\n').encode())
        elif cmd == 'close':
            os.close(fd)
        answer('ok')
    except OSError as e:
        answer(errno.errorcode.get(e.errno, str(e.errno)))

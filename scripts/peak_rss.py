"""Run a command and write its own peak resident memory (KiB) to a file.

    python scripts/peak_rss.py OUT -- COMMAND [ARGS...]

Linux starts a child's peak-RSS mark from its parent's address space when the child is made with
vfork or fork (the old mm's high-water mark is carried over at exec), so a large parent (a test
runner) makes every child look as large as itself. This small process forks the command from a
fresh, small address space, so the figure that wait4 reports is the command's own. The exit
status is the command's; SIGTERM/SIGINT are passed on to it.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> int:
    out, sep, *command = sys.argv[1:]
    if sep != "--" or not command:
        raise SystemExit(__doc__)
    pid = os.fork()
    if pid == 0:
        os.execvp(command[0], command)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _frame: os.kill(pid, s))
    _, status, usage = os.wait4(pid, 0)
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(str(usage.ru_maxrss))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())

"""zuul-executor, with its finger log streamer bound to 127.0.0.1.

Zuul 14.3.0 hard-codes the streamer's address as '::' (every interface) in
zuul/cmd/executor.py. The suite must bind loopback only, and installed Zuul files
are not edited: this wrapper replaces the host LogStreamer is given, then runs
Zuul's own executor entry point unchanged (the same arguments as zuul-executor).
"""
import sys

import zuul.lib.log_streamer as log_streamer

_original_init = log_streamer.LogStreamer.__init__


def _loopback_init(self, host, port, jobdir_root):
    _original_init(self, '127.0.0.1', port, jobdir_root)


log_streamer.LogStreamer.__init__ = _loopback_init

from zuul.cmd.executor import main  # noqa: E402  (after the patch, on purpose)

if __name__ == '__main__':
    sys.argv[0] = 'zuul-executor'
    sys.exit(main())

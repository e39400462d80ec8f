"""Run a command with its third-party stderr chatter sent to a log file, not the terminal.

``python -m benchmarks.stderr_log LOG -- CMD ARGS...`` runs CMD with stdout untouched. Every
byte CMD writes to stderr is appended to LOG; the terminal's stderr gets the same stream
minus recognised third-party noise: the profiler's ``USDT ... profiler_start/stop`` lines,
``gpuGetDeviceCount failed``, c10/glog ``W``/``I`` log lines, and Python warnings (header,
message lines and source line). Anything not recognised passes through, so a traceback or an
error message is never hidden, and the exit status is CMD's own. ``run_all_profilers.sh``
wraps each step in this.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

_NOISE_LINE = re.compile(
    rb"^(USDT:.*profiler_(start|stop)"                  # kineto's probe markers
    rb"|.*gpuGetDeviceCount failed"                     # CUDA/ROCm probe on a GPU-less host
    rb"|\[?[WI]\d{4} \d\d:\d\d:\d\d)"                   # c10 / glog warnings and info
)
# A progress bar redraws with a leading \r and no line end, so a marker printed meanwhile
# lands on the bar's line: "benchmarks: 39%|...]USDT:... profiler_start".
_TRAILING_MARKER = re.compile(rb"USDT:[^\r\n]*profiler_(start|stop)\s*$")
_WARNING_HEADER = re.compile(rb"^\S.*:\d+: \w*Warning: ")  # warnings.formatwarning's first line
_ALWAYS_SHOWN = re.compile(rb"^(Traceback|\w*(Error|Exception)\b|error:|\[E\d{4} )")
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\n|\r)")
_MAX_WARNING_LINES = 12   # a runaway "continuation" never swallows more than this


class NoiseFilter:
    """Splits a stderr byte stream into (shown, routed) pieces, one line at a time.

    Lines end at ``\\n`` or ``\\r`` (progress bars redraw with ``\\r``, so they pass at once).
    """

    def __init__(self) -> None:
        self._pending = b""
        self._in_warning = 0        # lines left that may continue the last warning
        self.routed_lines = 0

    def _is_noise(self, line: bytes) -> bool:
        text = line.rstrip(b"\r\n")
        if _ALWAYS_SHOWN.match(text):
            self._in_warning = 0
            return False
        if _WARNING_HEADER.match(text):
            self._in_warning = _MAX_WARNING_LINES
            return True
        if _NOISE_LINE.match(text):
            self._in_warning = 0
            return True
        if self._in_warning:
            # message lines of a multi-line warning, then the indented source line ends it
            self._in_warning = 0 if text.startswith(b"  ") else self._in_warning - 1
            return True
        return False

    def feed(self, data: bytes) -> bytes:
        """Return the part of ``data`` (plus what was pending) to show on the terminal."""
        self._pending += data
        lines = _LINE.findall(self._pending)   # contiguous from the start
        self._pending = self._pending[sum(map(len, lines)):]
        shown = []
        for line in lines:
            if self._is_noise(line):
                self.routed_lines += 1
                continue
            marker = _TRAILING_MARKER.search(line)
            if marker:                 # keep the bar fragment, route the marker
                self.routed_lines += 1
                line = line[:marker.start()]
            shown.append(line)
        return b"".join(shown)

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return b"" if not rest or self._is_noise(rest) else rest


def run(cmd: list[str], log: Path) -> int:
    """Run ``cmd``; stderr to ``log`` (appended) and, filtered, to our stderr. Its exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    noise = NoiseFilter()
    with log.open("ab") as sink:
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
        try:
            while chunk := os.read(proc.stderr.fileno(), 65536):
                sink.write(chunk)
                sink.flush()
                shown = noise.feed(chunk)
                if shown:
                    sys.stderr.buffer.write(shown)
                    sys.stderr.buffer.flush()
        except KeyboardInterrupt:
            pass    # Ctrl-C reached the child too (same process group): report how it ended
        sys.stderr.buffer.write(noise.flush())
        sys.stderr.buffer.flush()
        code = proc.wait()
    if noise.routed_lines:
        print(f"[stderr_log] {noise.routed_lines} lines of third-party warnings/profiler "
              f"output went to {log}", file=sys.stderr)
    if code:
        print(f"[stderr_log] {' '.join(cmd[:4])} ... exited with status {code}; its complete "
              f"stderr is in {log}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m benchmarks.stderr_log LOG -- CMD [ARGS...]", file=sys.stderr)
        return 2
    return run(argv[2:], Path(argv[0]))


if __name__ == "__main__":
    sys.exit(main())

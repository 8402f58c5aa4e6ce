"""Compact console output for long multi-run jobs (the demo).

While a run trains, :class:`ProgressLine` shows one line for it (rewritten in
place on a terminal, every 25 % otherwise) with iterations, seconds per
iteration, the ETA and the loss. :func:`quiet_console` keeps mmengine's INFO
lines off the console (they still go to the run's log file in its work dir)
and lets warnings and errors through.
"""
import contextlib
import os.path as osp
import re
import sys
import time
import warnings

from mmengine.hooks import Hook

_ANSI = re.compile(r'\x1b\[[0-9;]*m')
_LOUD = (' - WARNING - ', ' - ERROR - ', ' - CRITICAL - ')


def _clock(seconds):
    seconds = max(0, int(round(seconds)))
    return f'{seconds // 60}:{seconds % 60:02d}'


class ProgressLine(Hook):
    """One progress line per training run.

    Args:
        label (str): Name of the run, first on the line.
        stream (file, optional): Where the line goes (default: the console's
            stdout at construction, so that :func:`quiet_console` does not
            swallow it).
        steps (int): Lines per run when ``stream`` is not a terminal.
    """

    priority = 'VERY_LOW'

    def __init__(self, label, stream=None, steps=4):
        self.label = label
        self.stream = stream or sys.__stdout__
        self.tty = bool(getattr(self.stream, 'isatty', lambda: False)())
        self.steps = max(1, int(steps))
        self._t0 = self._start = self._total = None
        self._next = 0

    def before_train(self, runner):
        """Remember where the run starts (a resumed run starts past 0)."""
        self._t0, self._start, self._total = time.time(), runner.iter, runner.max_iters
        done = self._start / max(self._total, 1)
        self._next = (int(done * self.steps) + 1) / self.steps

    def line(self, it, loss=None):
        """The progress text at iteration ``it`` (1-based count done).

        Args:
            it (int): Iterations done.
            loss (float, optional): Latest training loss.

        Returns:
            str: e.g. ``npdg  [######----]  180/300 it  0.31 s/it  ETA 0:37  loss 0.712``.
        """
        total = max(self._total, 1)
        rate = (time.time() - self._t0) / max(it - self._start, 1)
        filled = int(10 * it / total)
        text = (f'{self.label:<14} [{"#" * filled}{"-" * (10 - filled)}] {it:>5}/{total} it  '
                f'{rate:.2f} s/it  ETA {_clock(rate * (total - it))}')
        if loss is not None:
            text += f'  loss {loss:.3f}'
        return text

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Rewrite the line (terminal) or print it at the next step."""
        it = runner.iter + 1
        done = it / max(self._total, 1)
        if not self.tty and done + 1e-9 < self._next and it < self._total:
            return
        loss = None
        if outputs and 'loss' in outputs:
            loss = float(outputs['loss'].detach())
        text = self.line(it, loss)
        if self.tty:
            self.stream.write('\r' + text + ('\n' if it >= self._total else ''))
        else:
            self.stream.write(text + '\n')
            self._next = (int(done * self.steps) + 1) / self.steps
        self.stream.flush()


class _LoudOnly:
    """A stdout stand-in that passes on only warning and error log records
    (other than deprecation notes)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        plain = _ANSI.sub('', text)
        # mmcv/mmengine deprecation notes (FileClient, ...) stay in the log file
        if any(tag in plain for tag in _LOUD) and 'deprecated' not in plain:
            self.stream.write(('\n' if getattr(self.stream, 'isatty', lambda: False)() else '')
                              + text)
        return len(text)

    def flush(self):
        self.stream.flush()

    def isatty(self):
        return False


_OURS = tuple(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))) + osp.sep + p
              for p in ('npdg', 'synthetic_domains'))


def _show_warning(show):
    """A ``warnings.showwarning`` that logs other libraries' warnings to the log file."""
    def showwarning(message, category, filename, lineno, file=None, line=None):
        if osp.abspath(filename).startswith(_OURS):
            return show(message, category, filename, lineno, file, line)
        from mmengine.logging import MMLogger
        MMLogger.get_current_instance().info(f'{category.__name__} ({filename}:{lineno}): {message}')
    return showwarning


@contextlib.contextmanager
def quiet_console(enabled=True):
    """Keep INFO log lines and other libraries' Python warnings off the console.

    mmengine's loggers write to the ``sys.stdout`` of the moment they are
    made, so a runner built inside the block logs INFO to its log file only;
    warning and error log records still reach the console, and so do Python
    warnings raised by npdg's own code. Other libraries' Python warnings
    (mmseg's deprecation notes) go to the run's log file.

    Args:
        enabled (bool): False makes this a no-op.
    """
    if not enabled:
        yield
        return
    with warnings.catch_warnings(), contextlib.redirect_stdout(_LoudOnly(sys.stdout)):
        warnings.showwarning = _show_warning(warnings.showwarning)
        yield

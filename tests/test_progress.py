"""The demo's console: one progress line per run, INFO kept in the log file, the plot."""
import io
import logging
import os.path as osp
import warnings

import torch
from mmengine.logging import MMLogger

from npdg.apis.demo import MODELS, plot_miou_vs_gflops
from npdg.apis.progress import ProgressLine, quiet_console

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


class _Runner:
    def __init__(self, start, total):
        self.iter, self.max_iters = start, total


def _drive(hook, runner, stop):
    hook.before_train(runner)
    while runner.iter < stop:
        hook.after_train_iter(runner, runner.iter, outputs=dict(loss=torch.tensor(0.5)))
        runner.iter += 1


def test_progress_prints_four_lines_per_run_off_a_terminal():
    out = io.StringIO()
    runner = _Runner(0, 100)
    _drive(ProgressLine('npdg', stream=out), runner, 100)
    lines = out.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ['25/100', '50/100', '75/100', '100/100']
    assert lines[-1].startswith('npdg') and '[##########]' in lines[-1]
    assert 'ETA 0:00' in lines[-1] and 'loss 0.500' in lines[-1]


def test_progress_of_a_resumed_run_starts_at_its_iteration():
    out = io.StringIO()
    runner = _Runner(60, 100)
    _drive(ProgressLine('perturb', stream=out), runner, 100)
    assert [line.split()[2] for line in out.getvalue().splitlines()] == ['75/100', '100/100']


def test_progress_rewrites_one_line_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    out = Tty()
    runner = _Runner(0, 10)
    _drive(ProgressLine('baseline', stream=out), runner, 10)
    text = out.getvalue()
    assert text.count('\r') == 10 and text.count('\n') == 1 and text.endswith('\n')


def test_quiet_console_keeps_info_in_the_file_and_shows_warnings(tmp_path, capsys):
    log_file = tmp_path / 'run.log'
    with quiet_console():
        logger = MMLogger.get_instance(f'quiet_{id(tmp_path)}', log_file=str(log_file))
        logger.info('an info line')
        logger.warning('a warning line')
        logger.warning('"FileClient" will be deprecated in future')
        warnings.warn('a library warning', UserWarning)  # raised from tests/, not npdg
    shown = capsys.readouterr().out
    assert 'a warning line' in shown
    assert 'an info line' not in shown and 'deprecated' not in shown
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.flush()
    text = log_file.read_text()
    assert 'an info line' in text and 'a warning line' in text and 'deprecated' in text
    assert 'a library warning' in text


def test_quiet_console_disabled_changes_nothing(capsys):
    with quiet_console(False):
        logger = MMLogger.get_instance('quiet_off')
        logger.info('visible info')
    assert 'visible info' in capsys.readouterr().out


def test_demo_plot_writes_a_png(tmp_path):
    rows = {name: dict(gflops=g, mean_mIoU=m, source_mIoU=m + 10, flops_input='3x128x256')
            for name, g, m in (('baseline', 0.66, 16.0), ('npdg', 0.33, 14.0))}
    path = tmp_path / 'p.png'
    plot_miou_vs_gflops(rows, str(path), 'demo')
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_every_demo_model_has_the_three_runs_and_their_configs_load():
    from npdg.utils.config import load_config
    for model, configs in MODELS.items():
        assert set(configs) == {'baseline', 'perturb', 'npdg'}
        hooks = {name: [h['type'] for h in load_config(osp.join(ROOT, path)).custom_hooks]
                 for name, path in configs.items()}
        assert 'UnitPruningHook' in hooks['npdg'] and 'UnitPruningHook' not in hooks['perturb']
        assert 'StylePerturbationHook' not in hooks['baseline']
        assert 'StylePerturbationHook' in hooks['perturb']
        assert set(hooks['perturb']) - {'UnitPruningHook'} <= set(hooks['npdg'])

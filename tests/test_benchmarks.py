"""The benchmark scripts' run tables and helpers (the runs themselves are benchmarks)."""
import importlib.util
import os.path as osp

import pytest
import torch

import npdg  # noqa: F401  (before mmseg)
from npdg.apis import experiment

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _module(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, 'benchmarks', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


accuracy = _module('accuracy')
unit_shift = _module('unit_shift')
RUNS = [(study, name) for study, runs in accuracy.STUDIES.items() for name in runs]


@pytest.mark.parametrize('study,name', RUNS, ids=lambda v: str(v))
def test_every_benchmark_run_is_a_valid_config_whose_options_are_read(study, name):
    """A misspelt or unread override fails here (SettingsError), not after an hour."""
    config, options = accuracy.STUDIES[study][name]
    cfg = experiment.load_config(osp.join(ROOT, config),
                                 dict(options, warm_start='w.pth', **{'randomness.seed': 1}))
    assert cfg.load_from == 'w.pth' and cfg.randomness.seed == 1
    assert cfg.train_dataloader.dataset.data_root.startswith(accuracy.DATA['root'])
    for key, value in options.items():
        node = cfg
        for part in key.split('.'):
            node = node[part]
        assert node == value, key
    if study == 'main' and name != 'source_only':
        hooks = {h['type']: h for h in cfg.custom_hooks}
        assert hooks['StylePerturbationHook']['stylized_ratio'] == 0.5
        if name != 'perturb_only':  # every pruned arm of the table: half the FLOPs
            assert hooks['UnitPruningHook']['target_flops_ratio'] == 0.5


def test_arms_share_the_recipe_and_warm_start():
    cfgs = {n: experiment.load_config(osp.join(ROOT, c), dict(o, warm_start='w.pth'))
            for n, (c, o) in accuracy.STUDIES['main'].items()}
    ref = cfgs['source_only']
    for name, cfg in cfgs.items():
        for key in ('model', 'train_dataloader', 'optim_wrapper', 'param_scheduler', 'train_cfg',
                    'load_from', 'test_dataloader'):
            assert cfg[key] == ref[key], (name, key)


def test_sparse_lr_sum_matches_the_scheduler_step_by_step():
    """sum(lr_t) over the sparse phase equals what mmengine's PolyLR gives the optimizer."""
    from mmengine.optim.scheduler import PolyLR
    cfg = experiment.load_config(osp.join(ROOT, 'configs/bench/npdg.py'))
    sched = next(p for p in cfg.param_scheduler if p['type'] == 'PolyLR')
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    poly = PolyLR(opt, eta_min=sched['eta_min'], power=sched['power'], begin=0,
                  end=cfg.max_iters, by_epoch=False)
    total = 0.0
    for _ in range(cfg.prune_iters[-1]):
        total += opt.param_groups[0]['lr']
        opt.step()
        poly.step()
    assert total == pytest.approx(accuracy.sparse_lr_sum(cfg), rel=1e-9)


def test_spearman_against_a_hand_computation():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert unit_shift.spearman(a, a * 10 + 3) == pytest.approx(1.0)
    assert unit_shift.spearman(a, -a) == pytest.approx(-1.0)
    # ranks (0,1,2,3) vs (1,0,3,2): d^2 = 4, rho = 1 - 6 * 4 / (4 * 15) = 0.6
    assert unit_shift.spearman(a, torch.tensor([2.0, 1.0, 4.0, 3.0])) == pytest.approx(0.6)

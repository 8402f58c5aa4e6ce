"""The benchmark scripts' run tables and helpers (the runs themselves are benchmarks)."""
import json
import os.path as osp

import pytest
import torch

import npdg  # noqa: F401  (before mmseg)
from benchmarks import accuracy, unit_shift
from npdg.apis import experiment
from npdg.apis.studies import STUDIES

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


RUNS = [(study, name) for study, s in STUDIES.items() for name in s['runs']]


@pytest.mark.parametrize('study,name', RUNS, ids=lambda v: str(v))
def test_every_benchmark_run_is_a_valid_config_whose_options_are_read(study, name):
    """A misspelt or unread override fails here (SettingsError), not after an hour."""
    config, options = STUDIES[study]['runs'][name]
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
            for n, (c, o) in STUDIES['main']['runs'].items()}
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


def test_side_study_rows_carry_the_budget_their_config_prunes_to():
    """accuracy.py's tables go through the comparison's summariser with the right budgets."""
    from npdg.apis import report

    def result(miou, source):
        return dict(targets={t: dict(mIoU=miou + i) for i, t in enumerate(report.TARGETS)},
                    mean_mIoU=miou + 1, source_mIoU=source, gflops=1.0, params=2e6,
                    latency_ms=3.0, train_seconds=4.0, warm_start='w.pth')
    runs = dict(npdg_r30={0: result(10, 30), 1: result(12, 32)},
                l1_r30={0: result(8, 28)})
    rows = accuracy.rows_of(runs, 'ablations')
    assert [(r['arm'], r['budget'], r['seed']) for r in rows] == [
        ('npdg_r30', 'r30', 0), ('npdg_r30', 'r30', 1), ('l1_r30', 'r30', 0)]
    summary = report.summarise(rows)
    assert summary[('npdg_r30', 'r30')]['mean_target_mIoU'][0] == pytest.approx(12.0)
    assert summary[('npdg_r30', 'r30')]['source_mIoU'][1] == pytest.approx(2 ** 0.5)
    main = accuracy.rows_of(dict(npdg={0: result(10, 30)}, source_only={0: result(9, 31)}),
                            'main')
    assert [r['budget'] for r in main] == ['flops50', 'unpruned']
    table = report.markdown(report.summarise(main), regime='r18h')
    assert table[2].startswith('| source_only | unpruned | 1 |')
    assert table[3].startswith('| npdg | flops50 | 1 |')


def test_mean_std_of_seeds_and_of_a_missing_figure():
    from npdg.apis.bench import mean_std
    assert mean_std([1.0, 2.0, 4.0]) == pytest.approx((7 / 3, (7 / 3) ** 0.5))
    assert mean_std([5.0]) == (5.0, 0.0)
    m, sd = mean_std([1.0, float('nan')])  # a run without a pseudo-target figure
    assert m != m and sd != sd


def test_accuracy_cli_writes_its_table_json_and_plot_from_cached_runs(tmp_path, monkeypatch):
    """The CLI's wiring (plan, cache, summary, table, plot) with the trainings stubbed out."""
    calls = []

    def cached(name, config, options, work_dir, data_root):
        calls.append((name, config, options['randomness.seed']))
        seed = options['randomness.seed']
        return dict(targets={t: dict(mIoU=10.0 + seed) for t in accuracy.TARGETS},
                    mean_mIoU=10.0 + seed, source_mIoU=30.0, pseudo_target_mIoU=20.0,
                    gflops=0.5, params=1e6, latency_ms=1.0, train_seconds=2.0,
                    warm_start=options['warm_start'])
    monkeypatch.setattr(accuracy, 'cached', cached)
    monkeypatch.setattr(accuracy, 'warm_start', lambda args: ('w.pth', {}))
    monkeypatch.setattr(accuracy, 'sha256', lambda path: '0' * 64)
    monkeypatch.setattr(accuracy.bench, 'prepare_data', lambda: None)
    accuracy.main(['--study', 'oracle', '--seeds', '0', '1', '--out-dir', str(tmp_path)])
    assert [c[0] for c in calls] == [f'oracle_{t}_seed{k}' for k in (0, 1)
                                     for t in accuracy.TARGETS]
    saved = json.load(open(tmp_path / 'bench_oracle.json'))
    assert saved['summary']['oracle_cityscapes (unpruned)']['mean_target_mIoU'] == [10.5, 0.5 ** 0.5]
    table = (tmp_path / 'bench_oracle.md').read_text()
    assert '| oracle_bdd100k | unpruned | 2 | 10.50 +- 0.71 |' in table
    assert (tmp_path / 'bench_oracle.png').stat().st_size > 1000


@pytest.mark.parametrize('name', sorted(__import__('benchmarks.effl0_bar_d').effl0_bar_d.VARIANTS))
def test_bar_d_variants_change_the_recipe_only_where_they_say(name):
    """Every variant of the bar-(d) study loads, reads its options, and has its reference run."""
    from benchmarks import effl0_bar_d as bar_d
    config, options, _, ref = bar_d.VARIANTS[name]
    cfg = experiment.load_config(osp.join(ROOT, config), dict(options, warm_start='w.pth'))
    assert cfg.load_from == 'w.pth'
    assert cfg.train_cfg.max_iters == options.get('max_iters', 600)
    arch = cfg.model.backbone.arch
    assert arch == bar_d.backbone(config) and cfg.model.backbone.init_cfg.checkpoint == \
        f'efficientnet-{arch}'
    assert bar_d.WARM[arch] == f"configs/bench_eff{arch.replace('lite', 'l')}/pretrain_source.py"
    hooks = {h['type']: h for h in cfg.custom_hooks}
    if config in (bar_d.SOURCE, bar_d.SOURCE_LITE2):
        assert 'UnitPruningHook' not in hooks and 'StylePerturbationHook' not in hooks
    else:
        assert hooks['UnitPruningHook']['target_flops_ratio'] == 0.75
        assert hooks['UnitPruningHook']['importance']['type'] == 'L1Importance'
        assert 'StylePerturbationHook' not in hooks
    if ref is not None:
        assert ref in bar_d.VARIANTS
        ref_cfg = experiment.load_config(osp.join(ROOT, bar_d.VARIANTS[ref][0]),
                                         dict(bar_d.VARIANTS[ref][1], warm_start='w.pth'))
        assert ref_cfg.model.backbone.arch == arch  # compared on the same backbone


def test_bar_d_table_pairs_seeds_across_this_study_and_a_comparison(tmp_path):
    """Runs of the study and of tools/compare.py --bars meet in one table, paired by seed."""
    from benchmarks import effl0_bar_d as bar_d

    def put(folder, name, seed, source):
        d = tmp_path / folder / f'{name}_0123456789abcdef'
        d.mkdir(parents=True)
        (d / 'result.json').write_text(json.dumps(dict(
            source_mIoU=source, mean_mIoU=source / 2, gflops=0.5,
            options={'randomness.seed': str(seed)})))
    put('cmp', 'source_only_seed0', 0, 33.0)             # a comparison's names
    put('cmp', 'source_only_seed1', 1, 32.0)
    put('cmp', 'l1_source_flops75_seed0', 0, 30.0)
    put('study', 'expansion_kd_ft450', 1, 31.0)          # this study's names
    put('study', 'source_only_600', 0, 99.0)             # shadowed by the first folder
    runs = bar_d.from_runs([str(tmp_path / 'cmp'), str(tmp_path / 'study')])
    assert {k: sorted(v) for k, v in runs.items()} == {'source_only_600': [0, 1],
                                                       'expansion_kd_ft450': [0, 1]}
    assert runs['source_only_600'][0]['source_mIoU'] == 33.0
    row = next(line for line in bar_d.table(runs).splitlines()
               if line.startswith('| expansion_kd_ft450 |'))
    # paired: (30 - 33) and (31 - 32) -> -2.0 +- 1.41
    assert '| 0,1 | 30.50 +- 0.71 | -2.00 +- 1.41 (2) |' in row

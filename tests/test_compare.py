"""tools/compare.py: the plan of runs, every arm's config at every budget, the tables."""
import importlib.util
import math
import os.path as osp

import pytest

import npdg  # noqa: F401  (before mmseg)
from npdg.apis import experiment

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
spec = importlib.util.spec_from_file_location('compare', osp.join(ROOT, 'tools', 'compare.py'))
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)

from npdg.apis import studies  # noqa: E402

IMPORTANCE_OF = dict(random='RandomImportance', l1='L1Importance', l2='L2Importance',
                     slimming='BNScaleImportance', taylor='TaylorImportance',
                     hessian='HessianImportance', dss='DSSImportance',
                     risk_variance='DomainRiskVarianceImportance', npdg='BNScaleImportance',
                     npdg_lam1='BNScaleImportance', npdg_s0='BNScaleImportance',
                     npdg_s001='BNScaleImportance',
                     npdg_by_w='SensitivityImportance', adasap_l1='L1Importance',
                     adasap_npdg='BNScaleImportance')
PRUNE_STEP = dict(effl0=150, r18h=200)   # the last prune iteration of each regime's recipe
PRUNED = [(regime, arm, budget) for regime, r in studies.REGIMES.items()
          for arm in [*r['criteria'], *r['extra']] for budget in r['budgets']]


def _options(regime, extra=None):
    warm = dict(warm_start='w.pth') if studies.REGIMES[regime]['warm_start'] else {}
    return dict(extra or {}, **warm)


@pytest.mark.parametrize('regime', list(studies.REGIMES))
def test_plan_runs_controls_once_per_seed_and_every_criterion_at_every_budget(regime):
    r = studies.REGIMES[regime]
    runs = studies.plan(regime, studies.default_arms(regime), list(r['budgets']), [0, 1, 2])
    assert len(runs) == 3 * (len(r['controls']) + len(r['criteria']) * len(r['budgets']))
    names = [compare.run_name(run) for run in runs]
    assert len(set(names)) == len(names)
    # seed 0 is complete before seed 1 starts (a partial comparison is a full table)
    assert [run['seed'] for run in runs] == sorted(run['seed'] for run in runs)
    assert {run['arm'] for run in runs if run['budget'] is None} == set(r['controls'])
    with pytest.raises(KeyError, match='choose from'):
        studies.plan(regime, ['no_such_arm'], list(r['budgets']), [0])
    with pytest.raises(KeyError, match='choose from'):
        studies.plan(regime, ['source_only'], ['no_such_budget'], [0])


def test_the_default_regime_is_the_imagenet_one():
    assert studies.DEFAULT_REGIME == 'effl0'
    cfg = experiment.load_config(osp.join(ROOT, studies.REGIMES['effl0']['controls']['source_only']))
    assert cfg.model.backbone.type == 'EfficientNetLite'
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='efficientnet-lite0')
    # one warm start, adapted to the source from ImageNet (no target, no perturbation)
    pre = experiment.load_config(osp.join(ROOT, studies.REGIMES['effl0']['warm_start']))
    assert pre.get('load_from') is None and pre.model == cfg.model
    assert pre.train_dataloader == cfg.train_dataloader
    assert [h['type'] for h in pre.custom_hooks] == ['ModelComplexityHook']
    assert cfg.syn_root == 'data/synthetic_bench'
    assert studies.REGIMES['effl0']['budgets']['flops75']['target_flops_ratio'] == 0.75


@pytest.mark.parametrize('regime,arm,budget', PRUNED)
def test_every_arm_prunes_with_its_criterion_at_the_budget(regime, arm, budget):
    r = studies.REGIMES[regime]
    cfg = experiment.load_config(osp.join(ROOT, studies.config_of(regime, arm)),
                                 _options(regime, dict(r['budgets'][budget],
                                                       **{'randomness.seed': 2})))
    hooks = {h['type']: h for h in cfg.custom_hooks}
    prune = hooks['UnitPruningHook']
    assert prune['importance']['type'] == IMPORTANCE_OF[arm]
    assert (prune['ratio'], prune['target_flops_ratio']) == \
        (r['budgets'][budget]['prune_ratio'], r['budgets'][budget]['target_flops_ratio'])
    # the same perturbation, schedule and start as the unpruned control
    ref = experiment.load_config(osp.join(ROOT, r['controls']['perturb_only']), _options(regime))
    assert hooks['StylePerturbationHook'] == {h['type']: h for h in ref.custom_hooks}[
        'StylePerturbationHook']
    for key in ('model', 'train_dataloader', 'optim_wrapper', 'param_scheduler', 'train_cfg',
                'load_from'):
        assert cfg.get(key) == ref.get(key), key
    assert max(prune['prune_iters']) == PRUNE_STEP[regime]
    # only NPDG and slimming train sparse; only NPDG and NPDG-by-w collect statistics
    npdg_arms = ('npdg', 'npdg_lam1', 'npdg_s0', 'npdg_s001', 'adasap_npdg')
    assert ('SensitivitySparsityHook' in hooks) == (arm in (*npdg_arms, 'slimming'))
    assert ('SensitivityStatisticsHook' in hooks) == (arm in (*npdg_arms, 'npdg_by_w'))
    if 'SensitivitySparsityHook' in hooks:
        assert hooks['SensitivitySparsityHook']['s'] == dict(npdg_s0=0.0, npdg_s001=0.01).get(
            arm, cfg.sparsity)
    if 'SensitivityStatisticsHook' in hooks:
        assert hooks['SensitivityStatisticsHook']['lam'] == (1.0 if arm == 'npdg_lam1' else 0.4)
    # only the AdaSAP arms take sharpness-aware steps, with the pruning criterion's radii
    assert ('AdaSAPHook' in hooks) == arm.startswith('adasap_')
    if arm.startswith('adasap_'):
        assert hooks['AdaSAPHook']['importance'] == prune['importance']


@pytest.mark.parametrize('regime', list(studies.REGIMES))
def test_the_bar_runs_are_the_source_only_recipe_changed_where_they_say(regime):
    r = studies.REGIMES[regime]
    src = experiment.load_config(osp.join(ROOT, r['controls']['source_only']), _options(regime))
    for name, (config, options) in r['bars'].items():
        cfg = experiment.load_config(osp.join(ROOT, config), _options(regime, options))
        assert cfg.optim_wrapper == src.optim_wrapper and cfg.model == src.model, name
        types = {h['type'] for h in cfg.custom_hooks}
        assert 'StylePerturbationHook' not in types, name   # bars are about the source
        if name == 'source_only_x1_5':
            assert cfg.train_cfg.max_iters == src.train_cfg.max_iters * 3 // 2
        elif name.startswith('oracle_'):
            assert cfg.train_cfg == src.train_cfg
            assert cfg.train_dataloader.dataset.type != src.train_dataloader.dataset.type
        else:  # plain L1 at 0.75x FLOPs, fine-tuned to the end of the schedule
            prune = {h['type']: h for h in cfg.custom_hooks}['UnitPruningHook']
            assert prune['importance']['type'] == 'L1Importance'
            assert (prune['ratio'], prune['target_flops_ratio']) == (None, 0.75)
            assert max(prune['prune_iters']) < cfg.train_cfg.max_iters == src.train_cfg.max_iters
            assert 'SensitivitySparsityHook' not in types


def _row(arm, budget, seed, value):
    result = dict(mean_mIoU=value, source_mIoU=40.0, pseudo_target_mIoU=20.0, gflops=1.0,
                  params=1e6, latency_ms=3.0, train_seconds=60.0,
                  targets={t: dict(mIoU=value + i) for i, t in enumerate(compare.TARGETS)})
    return compare.row_of(dict(arm=arm, budget=budget, seed=seed, config='c.py'), result, 'v')


def test_summary_and_table_by_hand():
    rows = [_row('perturb_only', None, 0, 20.0), _row('perturb_only', None, 1, 22.0),
            _row('taylor', 'r30', 0, 18.0), _row('taylor', 'r30', 1, 19.0)]
    summary = compare.summarise(rows)
    mean, std = summary[('taylor', 'r30')]['mean_target_mIoU']
    assert mean == 18.5 and std == pytest.approx(math.sqrt(0.5))
    assert summary[('perturb_only', 'unpruned')]['cityscapes_mIoU'][0] == 21.0
    lines = compare.markdown(summary, 'r18h')
    taylor = next(line for line in lines if line.startswith('| taylor'))
    assert '| -2.50 |' in taylor and '18.50 +- 0.71' in taylor
    assert lines.index(taylor) > next(i for i, line in enumerate(lines)
                                      if line.startswith('| perturb_only'))


def test_finished_runs_are_recognised_by_config_and_code(tmp_path):
    import json

    from npdg.apis import bench
    run = studies.plan('r18h', ['taylor'], ['flops50'], [1])[0]
    options = dict(run['options'], warm_start='w.pth', **{'randomness.seed': 1})
    assert not compare.finished(run, options, str(tmp_path))
    key = experiment.run_key(bench.load(run['config'], options))
    folder = tmp_path / f'{compare.run_name(run)}_{key}'
    folder.mkdir()
    (folder / 'result.json').write_text(json.dumps(dict(run_key=key)))
    assert compare.finished(run, options, str(tmp_path))
    other = dict(options, **{'randomness.seed': 2})  # another config: another key
    assert not compare.finished(run, other, str(tmp_path))


def test_bars_by_hand(monkeypatch):
    """(a) longer run - source, (b) source - mean target, (c) oracles, (d) L1 - source."""
    from npdg.apis import bench

    def result(source, mean, gflops=1.0):
        return dict(source_mIoU=source, mean_mIoU=mean, gflops=gflops,
                    targets={t: dict(mIoU=mean + i) for i, t in enumerate(compare.TARGETS)})

    made = {'source_only_x1_5': 40.5, 'l1_source_flops75': 37.0}
    seen = []

    def cached(name, config, options, work_dir, log=print):
        seen.append((name, options.get('warm_start')))
        bar = name.rsplit('_seed', 1)[0]
        return result(made.get(bar, 0.0), 30.0 if bar.startswith('oracle_') else 0.0, 0.75)

    monkeypatch.setattr(bench, 'cached', cached)
    main = [(dict(arm='source_only', seed=0), result(40.0, 20.0)),
            (dict(arm='perturb_only', seed=0), result(39.0, 22.0))]
    lines, out = compare.bars('effl0', [0], main, {}, 'w', print, warm='ws.pth')
    figs = out['figures']
    assert figs['a_longer_minus_source'][0] == pytest.approx(0.5)
    assert figs['b_source_minus_mean_target'][0] == pytest.approx(20.0)
    assert figs['c_oracle_bdd100k'][0] == pytest.approx(31.0)
    assert figs['c_source_only_bdd100k'][0] == pytest.approx(21.0)
    assert figs['d_l1_flops75_minus_source'][0] == pytest.approx(-3.0)
    assert out['checks'] == dict(a=True, b=True, d=False)   # (d) fails: 3 points lost
    assert '| (d) | d_l1_flops75_minus_source >= -2 | NO |' in lines
    assert {w for _, w in seen} == {'ws.pth'}   # every bar run starts from the warm start
    with pytest.raises(RuntimeError, match='source_only runs of the same seeds'):
        compare.bars('effl0', [1], main, {}, 'w', print)


def test_cached_only_with_nothing_finished_writes_no_tables(tmp_path, monkeypatch, capsys):
    """It once crashed in the plot (max() of nothing) after writing empty tables."""
    import sys

    from npdg.apis import bench
    from npdg.utils import checkpoint_io
    warm = tmp_path / 'warm.pth'
    warm.write_bytes(b'weights')
    monkeypatch.setattr(bench, 'prepare_data', lambda: None)
    monkeypatch.setattr(bench, 'cached', lambda *a, **k: pytest.fail('nothing may train'))
    out = tmp_path / 'out'
    monkeypatch.setattr(sys, 'argv', [
        'compare.py', '--arms', 'taylor', '--budgets', 'flops50', '--seeds', '0', '--cached-only',
        '--warm-start', str(warm), '--work-dir', str(tmp_path / 'runs'), '--out-dir', str(out)])
    monkeypatch.setattr(checkpoint_io, 'file_digest', lambda path: 'ab' * 32)
    compare.main()
    printed = capsys.readouterr().out
    assert '1 runs of the plan are not finished and left out: taylor_flops50_seed0' in printed
    assert 'no tables written' in printed and not out.exists()

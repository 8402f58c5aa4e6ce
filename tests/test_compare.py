"""tools/compare.py: the plan of runs, every arm's config at every budget, the tables."""
import importlib.util
import math
import os.path as osp

import npdg  # noqa: F401  (before mmseg)
import pytest

from npdg.apis import experiment

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
spec = importlib.util.spec_from_file_location('compare', osp.join(ROOT, 'tools', 'compare.py'))
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)

IMPORTANCE_OF = dict(random='RandomImportance', l1='L1Importance', l2='L2Importance',
                     slimming='BNScaleImportance', taylor='TaylorImportance',
                     hessian='HessianImportance', dss='DSSImportance',
                     risk_variance='DomainRiskVarianceImportance', npdg='BNScaleImportance',
                     npdg_by_w='SensitivityImportance', adasap_l1='L1Importance',
                     adasap_npdg='BNScaleImportance')


def test_plan_runs_controls_once_per_seed_and_every_criterion_at_every_budget():
    runs = compare.plan(compare.ARMS, list(compare.BUDGETS), [0, 1, 2])
    n_controls, n_criteria = len(compare.CONTROL_ARMS), len(compare.CRITERION_ARMS)
    assert len(runs) == 3 * (n_controls + n_criteria * len(compare.BUDGETS))
    names = [compare.run_name(r) for r in runs]
    assert len(set(names)) == len(names)
    # seed 0 is complete before seed 1 starts (a partial comparison is a full table)
    assert [r['seed'] for r in runs] == sorted(r['seed'] for r in runs)
    assert {r['arm'] for r in runs if r['budget'] is None} == set(compare.CONTROL_ARMS)


@pytest.mark.parametrize('budget', list(compare.BUDGETS))
@pytest.mark.parametrize('arm', list(compare.CRITERION_ARMS))
def test_every_arm_prunes_with_its_criterion_at_the_budget(arm, budget):
    cfg = experiment.load_config(osp.join(ROOT, compare.CRITERION_ARMS[arm]),
                                 dict(compare.BUDGETS[budget], warm_start='w.pth',
                                      **{'randomness.seed': 2}))
    hooks = {h['type']: h for h in cfg.custom_hooks}
    prune = hooks['UnitPruningHook']
    assert prune['importance']['type'] == IMPORTANCE_OF[arm]
    assert (prune['ratio'], prune['target_flops_ratio']) == \
        (compare.BUDGETS[budget]['prune_ratio'], compare.BUDGETS[budget]['target_flops_ratio'])
    # the same perturbation, schedule and warm start as the unpruned control
    ref = experiment.load_config(osp.join(ROOT, compare.CONTROL_ARMS['perturb_only']),
                                 dict(warm_start='w.pth'))
    assert hooks['StylePerturbationHook'] == {h['type']: h for h in ref.custom_hooks}[
        'StylePerturbationHook']
    for key in ('model', 'train_dataloader', 'optim_wrapper', 'param_scheduler', 'train_cfg',
                'load_from'):
        assert cfg[key] == ref[key], key
    assert max(prune['prune_iters']) == 200
    # only NPDG and slimming train sparse; only NPDG and NPDG-by-w collect statistics
    assert ('SensitivitySparsityHook' in hooks) == (arm in ('npdg', 'slimming', 'adasap_npdg'))
    assert ('SensitivityStatisticsHook' in hooks) == (arm in ('npdg', 'npdg_by_w',
                                                             'adasap_npdg'))
    # only the AdaSAP arms take sharpness-aware steps, with the pruning criterion's radii
    assert ('AdaSAPHook' in hooks) == arm.startswith('adasap_')
    if arm.startswith('adasap_'):
        assert hooks['AdaSAPHook']['importance'] == prune['importance']


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
    lines = compare.markdown(summary)
    taylor = next(line for line in lines if line.startswith('| taylor'))
    assert '| -2.50 |' in taylor and '18.50 +- 0.71' in taylor
    assert lines.index(taylor) > next(i for i, line in enumerate(lines)
                                      if line.startswith('| perturb_only'))


def test_finished_runs_are_recognised_by_config_and_code(tmp_path):
    import json

    from npdg.apis import bench
    run = compare.plan(['taylor'], ['flops50'], [1])[0]
    options = dict(run['options'], warm_start='w.pth', **{'randomness.seed': 1})
    assert not compare.finished(run, options, str(tmp_path))
    key = experiment.run_key(bench.load(run['config'], options))
    folder = tmp_path / f'{compare.run_name(run)}_{key}'
    folder.mkdir()
    (folder / 'result.json').write_text(json.dumps(dict(run_key=key)))
    assert compare.finished(run, options, str(tmp_path))
    other = dict(options, **{'randomness.seed': 2})  # another config: another key
    assert not compare.finished(run, other, str(tmp_path))

"""Benchmark scripts that must not rot: gpu_check in its CPU quick mode, demo_profile."""
import json
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_gpu_check_quick_on_cpu(tmp_path):
    out = tmp_path / 'gpu_check.json'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'benchmarks', 'gpu_check.py'), '--device', 'cpu',
         '--quick', '--iters', '5', '--work-dir', str(tmp_path / 'work'), '--out', str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.load(open(out))
    assert result['device'] == 'cpu' and result['quick'] and result['gpu'] is None
    # (a) the real R50 recipe trained, pruned once at 60 % and was tested on every target
    recipe = result['recipe']
    assert recipe['config'] == 'configs/npdg/deeplab_gta_advstyle.py'
    (step, ) = recipe['pruning']
    assert step['iter'] == 3 and step['gflops_after'] < 0.8 * step['gflops_before']
    for target in ('cityscapes', 'bdd100k', 'mapillary'):
        assert 0 <= recipe['metrics'][f'{target}/mIoU'] <= 100
    assert recipe['metrics']['gflops'] == step['gflops_after']  # the test saw the pruned model
    # (b) s/iteration of both phases and of the source-only recipe
    over = result['overhead']
    assert over['source_only']['config'] == 'configs/baselines/deeplabv3plus_r50-d8_gta.py'
    assert over['source_only']['iters'] == 4  # iterations 2..5 (the first one is warm-up)
    assert over['npdg_sparse_phase']['iters'] == 2 and over['npdg_after_prune']['iters'] == 2
    assert over['sparse_phase_over_source'] == (over['npdg_sparse_phase']['s_per_iter']
                                                / over['source_only']['s_per_iter'])
    # (d) no GPU memory on the CPU
    assert over['source_only']['peak_memory_mib'] is None
    # (c) pruned speed rows per batch size
    rows = result['pruned_speed']
    assert [(r['model'], r['input'], r['dtype']) for r in rows] == [
        ('segformer_b0', '1x3x64x128', 'fp32'), ('segformer_b0', '2x3x64x128', 'fp32')]
    assert all(r['gflops_pruned'] < r['gflops_base'] for r in rows)


def _script(name):
    """The benchmark script ``benchmarks/<name>.py`` (an importable module)."""
    import importlib
    return importlib.import_module(f'benchmarks.{name}')


def test_demo_profile_accounts_for_every_part(workspace, tmp_path, monkeypatch):
    demo_profile = _script('demo_profile')
    monkeypatch.chdir(workspace)
    out = tmp_path / 'profile.json'
    (row, ) = demo_profile.main(['--configs', 'npdg', '--iters', '3', '--prune-at', '2',
                                 '--data-root', str(workspace / 'data' / 'synthetic'),
                                 '--out', str(out)])
    parts = row['parts']
    assert parts['model.train_step']['calls'] == 3 and parts['data']['calls'] == 3
    assert parts['StylePerturbationHook.before_train_iter']['calls'] == 3
    assert parts['UnitPruningHook.after_train_iter']['seconds'] > 0
    # the parts add up to the wall time ('other' is the remainder, never negative)
    assert sum(p['seconds'] for p in parts.values()) == pytest.approx(row['wall_s'])
    assert parts['other']['seconds'] >= 0
    assert json.load(open(out))['rows'][0]['iters'] == 3


def test_adasap_cost_measures_every_variant(workspace, tmp_path, monkeypatch):
    adasap_cost = _script('adasap_cost')
    monkeypatch.chdir(workspace)
    out = tmp_path / 'cost.json'
    result = adasap_cost.main(['--iters', '3', '--rounds', '1', '--skip', '1', '--batch-size', '2',
                               '--crop', '64', '--workers', '0',
                               '--data-root', str(workspace / 'data' / 'synthetic'),
                               '--out', str(out)])
    assert set(result['median_s']) == set(adasap_cost.VARIANTS)
    # the extra forward/backward is never free
    assert result['ratios']['adasap / sgd'] > 1.0
    assert json.load(open(out))['ratios'] == result['ratios']


def test_unit_shift_runs_on_a_trained_model(workspace, npdg_demo_run, tmp_path):
    """benchmarks/unit_shift.py end to end (it once broke when the renderer moved)."""
    unit_shift = _script('unit_shift')
    out = tmp_path / 'unit_shift.json'
    result = unit_shift.main([
        '--checkpoint', str(npdg_demo_run / 'iter_3.pth'),
        '--config', 'configs/demo/npdg_deeplab_r18_synthetic.py',
        '--data-root', str(workspace / 'data' / 'synthetic'), '--batches', '2',
        '--out', str(out)])
    assert json.load(open(out)) == result
    assert result['layers'] > 10 and result['channels'] > 500
    for key in ('unary', 'binary', 'w'):
        assert -1 <= result['spearman_pooled'][key] <= 1
        assert -1 <= result['spearman_median_over_layers'][key] <= 1
    assert result['shift_top30_w'] > 0 and result['shift_rest'] > 0


def test_stats_stability_curve(workspace, npdg_demo_run, tmp_path):
    """benchmarks/stats_stability.py: agreement of two estimates at two sizes."""
    stats_stability = _script('stats_stability')
    result = stats_stability.main([
        '--checkpoint', str(npdg_demo_run / 'iter_3.pth'), '--sizes', '1', '2',
        '--data-root', str(workspace / 'data' / 'synthetic'),
        '--styles', 'random', 'adversarial', '--out', str(tmp_path / 'stab')])
    assert set(result['curves']) == {'random', 'adversarial'}
    for rows in result['curves'].values():
        assert [r['batches'] for r in rows] == [1, 2]
        for r in rows:
            assert -1 <= r['w']['median'] <= 1 and 0 <= r['w']['share_ge_0_8'] <= 1
    assert (tmp_path / 'stab.md').read_text().count('| random |') == 2


def test_kept_widths_sums_each_stage_and_averages_seeds(tmp_path):
    kept_widths = _script('kept_widths')
    runs = tmp_path / 'runs'
    widths = {0: {'backbone._blocks.1._depthwise_conv': [96, 24],     # stage 1
                  'backbone._blocks.2._depthwise_conv': [144, 96],    # stage 1
                  'backbone._blocks.9._depthwise_conv': [672, 168]},  # stage 4
              1: {'backbone._blocks.1._depthwise_conv': [96, 48],
                  'backbone._blocks.2._depthwise_conv': [144, 72],
                  'backbone._blocks.9._depthwise_conv': [672, 336]}}
    for seed, layers in widths.items():
        folder = runs / f'npdg_flops50_seed{seed}_{"0" * 15}{seed}'
        folder.mkdir(parents=True)
        (folder / 'result.json').write_text(json.dumps(dict(pruning=dict(layers=layers))))
    other = runs / f'l1_flops75_seed0_{"a" * 16}'  # another budget: left out
    other.mkdir()
    (other / 'result.json').write_text(json.dumps(dict(pruning=dict(layers=widths[0]))))
    table = kept_widths.main(['--from-runs', str(runs), '--out-dir', str(tmp_path / 'out')])
    assert set(table) == {'npdg'} and table['npdg']['seeds'] == [0, 1]
    # stage 1: (24 + 96) / 240 = 0.5 and (48 + 72) / 240 = 0.5; stage 4: 0.25 and 0.5
    assert table['npdg']['backbone.stage1'] == pytest.approx((0.5, 0.0))
    assert table['npdg']['backbone.stage4'][0] == pytest.approx(0.375)
    assert table['npdg']['all'][0] == pytest.approx(((288 / 912) + (456 / 912)) / 2)
    assert (tmp_path / 'out' / 'kept_widths_flops50.md').read_text().count('| npdg |') == 1

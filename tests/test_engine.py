"""The hook contract: order check, one checkpoint namespace, shared windows."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import CheckpointHook

import npdg  # noqa: F401
from npdg.engine import NpdgHook, check_hook_order, ckpt_state, order_violations
from npdg.engine.run_state import run_state
from npdg.hooks import (
    PrunedCheckpointHook,
    RNGStateHook,
    SensitivityStatisticsHook,
    StylePerturbationHook,
    UnitPruningHook,
)


def _hooks(*hooks):
    """Sorted as mmengine's Runner.register_hook sorts them (stable by priority)."""
    from mmengine.runner.priority import get_priority
    return sorted(hooks, key=lambda h: get_priority(h.priority))


def test_default_priorities_keep_the_required_order():
    hooks = _hooks(CheckpointHook(interval=1), UnitPruningHook(prune_iters=[2]),
                   StylePerturbationHook(), SensitivityStatisticsHook(), RNGStateHook(),
                   PrunedCheckpointHook())
    assert order_violations(hooks) == []


def test_a_config_priority_that_breaks_the_order_is_an_error_naming_both_hooks():
    stats = SensitivityStatisticsHook(priority='LOW')  # below the perturbation's ABOVE_NORMAL
    hooks = _hooks(StylePerturbationHook(), stats, PrunedCheckpointHook())
    runner = SimpleNamespace(hooks=hooks)
    with pytest.raises(RuntimeError, match=r'SensitivityStatisticsHook \(priority LOW\) runs '
                                           r'after StylePerturbationHook \(priority '
                                           r'ABOVE_NORMAL\).*clean batch'):
        check_hook_order(runner)


def test_pruning_after_the_checkpoint_hook_is_caught():
    hooks = _hooks(CheckpointHook(interval=1), UnitPruningHook(prune_iters=[2], priority=95))
    (problem,) = order_violations(hooks)
    assert problem.startswith('UnitPruningHook (priority 95) runs after CheckpointHook')


def test_the_order_is_checked_once_in_before_train():
    class Counting(NpdgHook):
        pass
    bad = _hooks(StylePerturbationHook(), SensitivityStatisticsHook(priority='LOW'))
    runner = SimpleNamespace(hooks=bad)
    with pytest.raises(RuntimeError):
        Counting().before_train(runner)
    good = SimpleNamespace(hooks=[])
    Counting().before_train(good)
    assert run_state(good).order_checked
    good.hooks = bad  # already checked for this run: not again
    Counting().before_train(good)


@pytest.mark.parametrize('name', sorted(ckpt_state.LEGACY))
def test_checkpoint_state_is_namespaced_and_old_layouts_still_read(name):
    new = {}
    ckpt_state.put(new, name, {'x': 1})
    assert new == {'meta': {'npdg': {name: {'x': 1}}}}
    assert ckpt_state.get(new, name) == {'x': 1}
    where, key = ckpt_state.LEGACY[name]
    old = {'meta': {key: {'y': 2}}} if where == 'meta' else {'meta': {}, key: {'y': 2}}
    assert ckpt_state.get(old, name) == {'y': 2}
    assert ckpt_state.pop(old, name) == {'y': 2} and ckpt_state.get(old, name) is None
    resuming, fine_tuning = SimpleNamespace(_resume=True), SimpleNamespace(_resume=False)
    assert ckpt_state.resumed(resuming, new, name) == {'x': 1}
    assert ckpt_state.resumed(fine_tuning, new, name) is None


def test_unknown_checkpoint_state_names_the_table():
    with pytest.raises(KeyError, match='LEGACY'):
        ckpt_state.put({}, 'sensitivity', 1)


def test_an_old_checkpoint_resumes_the_pruning_progress():
    hook = UnitPruningHook(prune_iters=[2, 4])
    old = {'meta': {'npdg_pruning': dict(total_units=10, removed=3, steps_done=1,
                                         start_gflops=1.0, done_iters=[2])}}
    hook.after_load_checkpoint(SimpleNamespace(_resume=True), old)
    assert (hook.removed, hook.steps_done, [h['iter'] for h in hook.history]) == (3, 1, [2])
    saved = {}
    hook.before_save_checkpoint(None, saved)
    assert saved['meta']['npdg']['pruning']['done_iters'] == [2]


def test_every_npdg_hook_follows_the_contract():
    from mmseg.registry import HOOKS
    ours = {name: cls for name, cls in HOOKS.module_dict.items()
            if cls.__module__.startswith('npdg.')}
    assert len(ours) >= 8
    for name, cls in ours.items():
        assert issubclass(cls, NpdgHook), name
        if cls.state_name is not None:
            assert cls.state_name in ckpt_state.LEGACY, name


def test_windows_end_at_the_last_prune_step_unless_set():
    runner = SimpleNamespace()
    assert NpdgHook.until_last_prune(runner) is None
    run_state(runner).prune_iters = [4, 8]
    assert NpdgHook.until_last_prune(runner) == 8
    assert NpdgHook.until_last_prune(runner, 5) == 5


def test_rng_state_round_trips_through_the_namespace():
    hook = RNGStateHook()
    saved = {}
    hook.before_save_checkpoint(None, saved)
    assert torch.equal(saved['meta']['npdg']['rng_state']['torch'], torch.get_rng_state())


def test_import_npdg_leaves_mmengines_runner_class_unchanged():
    from mmengine.runner import Runner
    # from_cfg stays wrapped (settings; mmseg 1.2's stock tools/test.py calls it directly)
    for name in ('register_hooks', 'build_model', 'load_checkpoint'):
        fn = vars(Runner)[name]
        fn = getattr(fn, '__func__', fn)
        assert fn.__module__ == 'mmengine.runner.runner', name
        assert not hasattr(fn, '__wrapped__'), name


def test_npdg_runner_converts_attention_at_build_and_adds_the_checkpoint_hook(tmp_path):
    from conftest import runner_cfg, segformer_b0_cfg

    from npdg.engine.runner import NpdgRunner
    from npdg.models.per_head_attention import PerHeadEfficientAttention
    runner = NpdgRunner.from_cfg(runner_cfg(tmp_path, segformer_b0_cfg(), max_iters=1))
    heads = [m for m in runner.model.modules() if isinstance(m, PerHeadEfficientAttention)]
    assert heads, 'attention converted when the model was built'
    assert sum(isinstance(h, PrunedCheckpointHook) for h in runner.hooks) == 1
    # the optimizer is built later from the converted model: its parameters are the model's
    runner.optim_wrapper = runner.build_optim_wrapper(runner.cfg.optim_wrapper)
    params = {id(p) for g in runner.optim_wrapper.optimizer.param_groups for p in g['params']}
    assert {id(p) for p in runner.model.parameters()} <= params


def test_npdg_runner_resolves_settings_and_refuses_misspelt_keys(tmp_path):
    from conftest import deeplab_r18_cfg, runner_cfg

    from npdg.engine.runner import NpdgRunner
    cfg = runner_cfg(tmp_path, deeplab_r18_cfg(), max_iters=4,
                     custom_hooks=[dict(type='UnitPruningHook', prune_iters='${prune_iters}',
                                        ratio=0.2, trace_shape=(3, 32, 32))])
    cfg.prune_iters = [2]
    runner = NpdgRunner.from_cfg(cfg)
    hook = next(h for h in runner.hooks if isinstance(h, UnitPruningHook))
    assert hook.prune_iters == [2]
    bad = runner_cfg(tmp_path / 'b', deeplab_r18_cfg(), max_iters=4)
    bad.custom_hook = []  # misspelt custom_hooks
    with pytest.raises(Exception, match='custom_hook'):
        NpdgRunner.from_cfg(bad)


def _npdg_import_graph():
    """module -> npdg modules it imports (module level and inside functions)."""
    import ast
    import os
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    mods = {}
    for folder, _, files in os.walk(osp.join(root, 'npdg')):
        for f in files:
            if f.endswith('.py'):
                path = osp.join(folder, f)
                name = osp.relpath(path, root)[:-3].replace(os.sep, '.')
                mods[name[:-9] if name.endswith('.__init__') else name] = path
    edges = {}
    for mod, path in mods.items():
        package = mod if path.endswith('__init__.py') else mod.rpartition('.')[0]
        targets = set()
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    parts = package.split('.')[:len(package.split('.')) - node.level + 1]
                    base = '.'.join(parts + ([base] if base else []))
                targets.update(f'{base}.{a.name}' if f'{base}.{a.name}' in mods else base
                               for a in node.names)
        edges[mod] = {t for t in targets if t in mods and t not in (mod, 'npdg')}
    return edges


def test_npdg_has_no_import_cycle():
    edges = _npdg_import_graph()
    assert 'npdg.compat' in edges and len(edges) > 80
    state, cycles = {}, []

    def visit(mod, path):
        state[mod] = 'open'
        for nxt in sorted(edges[mod]):
            if state.get(nxt) == 'open':
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[mod] = 'done'
    for mod in sorted(edges):
        if mod not in state:
            visit(mod, [mod])
    assert cycles == [], ' ; '.join(' -> '.join(c) for c in cycles)
    # the circle of issue 19: compat -> hooks -> pruning -> compat
    assert not any(t.startswith('npdg.hooks') for t in edges['npdg.compat'])
    assert 'npdg.compat' not in edges['npdg.pruning.recorder']

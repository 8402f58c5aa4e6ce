# CPU demo of NPDG (tools/demo.py) on the ImageNet-initialised EfficientNet-Lite0: the
# demo baseline's recipe (./deeplab_effl0_synthetic.py: same model, data, 450
# iterations, optimizer) plus the NPDG hooks, with the ImageNet regime's settings
# (configs/bench_effl0/npdg.py) on a shorter schedule.
#
#   iterations   0 ....... 150 ............. 450
#                sparse training | prune | fine-tune (no sparsity term)
#   style perturbation (AdvStyle, adversarial) on half of every batch throughout.
#
# The settings below are the knobs ('${name}' in configs/_base_/npdg_hooks.py), so
# `--cfg-options target_flops_ratio=0.75` changes what runs.
_base_ = ['./deeplab_effl0_synthetic.py', '../_base_/npdg_hooks.py']

perturbation = dict(type='AdvStyle')
stylized_ratio = 0.5
ascent_steps = 1
lam = 0.4
num_styles = 4
stats_interval = 50
sparsity = 0.1
prune_iters = [150]
prune_ratio = None
target_flops_ratio = 0.5   # half the FLOPs, as in docs/results.md's comparison
threshold = None

stats_batches = 8       # batches of 2 images per refresh (benchmarks/results/stats_stability.md)
trace_shape = (3, 64, 64)
# Units: the MBConv expansion channels only, as in configs/bench_effl0/npdg.py (why: there).
ignored_units = [r'^backbone\._blocks\.0\._depthwise_conv$', r'_project_conv$', r'^decode_head\.']
pruning_hook = dict(ignored_units='${ignored_units}')
custom_hooks = ['${complexity_hook}', '${style_hook}', '${statistics_hook}',
                '${sparsity_hook}', '${pruning_hook}', '${checkpoint_hook}']

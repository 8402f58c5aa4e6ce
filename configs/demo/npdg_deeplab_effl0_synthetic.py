# CPU demo of NPDG (tools/demo.py) on the ImageNet-initialised EfficientNet-Lite0: the
# ImageNet regime's NPDG recipe (configs/bench_effl0/npdg.py: model, hooks, settings, units)
# on the demo's data and schedule (./deeplab_effl0_synthetic.py: data/synthetic, 450
# iterations straight from ImageNet, no source warm start), pruned to half the FLOPs.
#
#   iterations   0 ....... 150 ............. 450
#                sparse training | prune | fine-tune (no sparsity term)
#   style perturbation (AdvStyle, adversarial) on half of every batch throughout.
#
# The settings are the knobs ('${name}' in configs/_base_/npdg_hooks.py), so
# `--cfg-options target_flops_ratio=0.75` changes what runs.
_base_ = ['../bench_effl0/npdg.py']

syn_root = 'data/synthetic'
warm_start = None       # straight from ImageNet (load_from = '${warm_start}')
max_iters = 450
default_hooks = dict(checkpoint=dict(interval=150, max_keep_ckpts=2))
prune_iters = [150]
prune_ratio = None
target_flops_ratio = 0.5   # half the FLOPs, as in docs/results.md's comparison
# No warm start, so no teacher: the regime's distilled fine-tune is left out here.
custom_hooks = ['${complexity_hook}', '${style_hook}', '${statistics_hook}',
                '${sparsity_hook}', '${pruning_hook}', '${checkpoint_hook}']

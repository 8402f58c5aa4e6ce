# CPU demo of NPDG: the demo baseline's recipe (configs/demo/deeplab_r18_synthetic.py:
# same model, data, 800 iterations, optimizer) plus the NPDG hooks.
#
#   iterations   0 ...... 500 ............ 800
#                sparse training  | prune | fine-tune (no sparsity term)
#   style perturbation (AdvStyle, adversarial) on half of every batch throughout.
#
# The settings below are the knobs: the hooks refer to them as '${name}', so
# `--cfg-options prune_ratio=0.5` (or a child config setting `prune_ratio = 0.5`)
# changes what runs, and the value that ran is in the work dir's config and in
# the pruning report.
_base_ = ['./deeplab_r18_synthetic.py']

perturbation = dict(type='AdvStyle')  # per-image RGB mean/std, adversarial (no pretrained net)
stylized_ratio = 0.5    # share of every batch re-styled (rest stays clean)
ascent_steps = 1        # gradient-ascent steps on the style per iteration
lam = 0.4               # w = lam * U + (1 - lam) * B (paper's best)
num_styles = 4          # K styles per content image for the statistics
stats_interval = 50     # statistics refresh period (iterations)
sparsity = 2e-2         # s: proximal shrink lr_t * s * omega per step (~0.14 over 500 it)
prune_iters = [500]     # prune after these iteration counts (several = iterative)
prune_ratio = 0.3       # r: fraction of all units (channel groups + heads) removed
target_flops_ratio = None  # or a FLOPs budget instead of r (with prune_ratio=None)
threshold = None        # t: only units with |gamma| < t may go (None: ratio only)

# The hooks are named settings too: the controls (configs/controls/) reuse them by
# reference and change only what they claim to change.
# FLOPs / params of the evaluated model in tools/test.py.
complexity_hook = dict(type='ModelComplexityHook', input_shape=(3, 128, 256))
# Style perturbation on a share of every batch, throughout training.
style_hook = dict(type='StylePerturbationHook', perturbation='${perturbation}',
                  stylized_ratio='${stylized_ratio}', ascent_steps='${ascent_steps}')
# 2 content images x K styles, 256 positions each, 1 batch(es) per refresh.
statistics_hook = dict(type='SensitivityStatisticsHook', interval='${stats_interval}',
                       num_batches=1, num_images=2, num_styles='${num_styles}',
                       num_positions=256, lam='${lam}')
# Sensitivity-reweighted L1 on BN gammas / head gates (proximal) until the last prune step.
sparsity_hook = dict(type='SensitivitySparsityHook', s='${sparsity}', threshold='${threshold}',
                     log_interval='${stats_interval}')
# Global |gamma| ranking (max over coupled BNs; head gates), >= 10 % of every layer kept;
# classifiers and auxiliary-head-only channels never units; optimizer state sliced.
pruning_hook = dict(type='UnitPruningHook', prune_iters='${prune_iters}', ratio='${prune_ratio}',
                    target_flops_ratio='${target_flops_ratio}', threshold='${threshold}',
                    importance=dict(type='BNScaleImportance'), min_keep_ratio=0.1,
                    trace_shape=(3, 64, 64), flops_shape=(3, 128, 256))
# Pruned checkpoints carry their structure and reload strictly.
checkpoint_hook = dict(type='PrunedCheckpointHook')
custom_hooks = [
    '${complexity_hook}', '${style_hook}', '${statistics_hook}', '${sparsity_hook}',
    '${pruning_hook}', '${checkpoint_hook}',
]

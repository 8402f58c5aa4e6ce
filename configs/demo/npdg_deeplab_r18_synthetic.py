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
sparsity = 3e-3         # s in s * sum_i omega_i |gamma_i|
prune_iters = [500]     # prune after these iteration counts (several = iterative)
prune_ratio = 0.3       # r: fraction of all units (channel groups + heads) removed
threshold = None        # t: only units with |gamma| < t may go (None: ratio only)

custom_hooks = [
    # FLOPs / params of the evaluated model in tools/test.py (at the synthetic Cityscapes size).
    dict(type='ModelComplexityHook', input_shape=(3, 128, 256)),
    # Image-level adversarial style perturbation on a share of each batch.
    dict(type='StylePerturbationHook', perturbation='${perturbation}',
         stylized_ratio='${stylized_ratio}', ascent_steps='${ascent_steps}'),
    # Sensitivity statistics: 2 images x K styles, 256 positions, every stats_interval.
    dict(type='SensitivityStatisticsHook', interval='${stats_interval}', num_batches=1,
         num_images=2, num_styles='${num_styles}', num_positions=256, lam='${lam}'),
    # Sensitivity-reweighted L1 on BN gammas / head gates until the prune step.
    dict(type='SensitivitySparsityHook', s='${sparsity}'),
    # Global |gamma| ranking, threshold then ratio budget, >= 10 % kept per layer.
    dict(type='UnitPruningHook', prune_iters='${prune_iters}', ratio='${prune_ratio}',
         threshold='${threshold}', importance=dict(type='BNScaleImportance'),
         min_keep_ratio=0.1, trace_shape=(3, 64, 64), flops_shape=(3, 128, 256)),
    # Pruned checkpoints carry their structure; loads are strict.
    dict(type='PrunedCheckpointHook'),
]

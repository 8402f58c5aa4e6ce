# CPU demo of NPDG: the demo baseline's recipe (configs/demo/deeplab_r18_synthetic.py:
# same model, data, 800 iterations, optimizer) plus the NPDG hooks.
#
#   iterations   0 ...... 500 ............ 800
#                sparse training  | prune | fine-tune (no sparsity term)
#   style perturbation (AdvStyle, adversarial) on half of every batch throughout.
_base_ = ['./deeplab_r18_synthetic.py']

prune_ratio = 0.3       # r: fraction of all units (channel groups + heads) removed
prune_iters = [500]     # prune after these iteration counts (several = iterative)

custom_hooks = [
    # FLOPs / params of the evaluated model in tools/test.py (at the synthetic Cityscapes size).
    dict(type='ModelComplexityHook', input_shape=(3, 128, 256)),
    # Image-level adversarial style perturbation (no pretrained network; CPU default):
    # per-image RGB mean/std re-drawn, one ascent step on the segmentation loss;
    # half of each batch is stylised, half stays clean.
    dict(type='StylePerturbationHook', perturbation=dict(type='AdvStyle'),
         stylized_ratio=0.5, ascent_steps=1),
    # Sensitivity statistics: every 50 iterations, 2 images x 4 styles, 256 positions;
    # w = 0.4 U + 0.6 B (lambda = 0.4, the paper's best).
    dict(type='SensitivityStatisticsHook', interval=50, num_batches=1, num_images=2,
         num_styles=4, num_positions=256, lam=0.4),
    # Sensitivity-reweighted L1 on BN gammas / head gates until the prune step.
    dict(type='SensitivitySparsityHook', s=3e-3),
    # Global |gamma| ranking, threshold 0.1 then ratio budget, >= 10 % kept per layer.
    dict(type='UnitPruningHook', prune_iters=prune_iters, ratio=prune_ratio, threshold=None,
         importance=dict(type='BNScaleImportance'), min_keep_ratio=0.1,
         trace_shape=(3, 64, 64), flops_shape=(3, 128, 256)),
    # Pruned checkpoints carry their structure; loads are strict.
    dict(type='PrunedCheckpointHook'),
]

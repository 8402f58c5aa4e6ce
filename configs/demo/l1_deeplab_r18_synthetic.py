# CPU demo control: L1-norm filter pruning at the same ratio and schedule as
# configs/demo/npdg_deeplab_r18_synthetic.py, with the same style perturbation,
# but no sensitivity statistics and no sparsity term. The settings (prune_ratio,
# prune_iters, perturbation, ...) are inherited and referred to, so overriding
# one changes both arms alike.
_base_ = ['./npdg_deeplab_r18_synthetic.py']

custom_hooks = [
    dict(type='ModelComplexityHook', input_shape=(3, 128, 256)),
    dict(type='StylePerturbationHook', perturbation='${perturbation}',
         stylized_ratio='${stylized_ratio}', ascent_steps='${ascent_steps}'),
    dict(type='UnitPruningHook', prune_iters='${prune_iters}', ratio='${prune_ratio}',
         threshold=None, importance=dict(type='L1Importance'), min_keep_ratio=0.1,
         trace_shape=(3, 64, 64), flops_shape=(3, 128, 256)),
    dict(type='PrunedCheckpointHook'),
]

# CPU demo control: L1-norm filter pruning at the same ratio and schedule as
# configs/demo/npdg_deeplab_r18_synthetic.py, with the same style perturbation,
# but no sensitivity statistics and no sparsity term.
_base_ = ['./npdg_deeplab_r18_synthetic.py']

custom_hooks = [
    dict(type='ModelComplexityHook', input_shape=(3, 128, 256)),
    dict(type='StylePerturbationHook', perturbation=dict(type='AdvStyle'),
         stylized_ratio=0.5, ascent_steps=1),
    dict(type='UnitPruningHook', prune_iters=[500], ratio=0.3, threshold=None,
         importance=dict(type='L1Importance'), min_keep_ratio=0.1,
         trace_shape=(3, 64, 64), flops_shape=(3, 128, 256)),
    dict(type='PrunedCheckpointHook'),
]

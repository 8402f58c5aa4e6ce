# configs/npdg/deeplab_gta.py with the AdvStyle perturbation (adversarial per-image
# RGB mean/std, one ascent step; no pretrained network, so no DSP weights).
# Everything else, hooks included, is the same recipe.
_base_ = ['./deeplab_gta.py']
custom_hooks = [
    dict(type='ModelComplexityHook', input_shape=(3, 512, 1024)),
    dict(type='StylePerturbationHook', perturbation=dict(type='AdvStyle'),
         stylized_ratio={{_base_.stylized_ratio}}, ascent_steps={{_base_.ascent_steps}}),
    dict(type='SensitivityStatisticsHook', interval={{_base_.stats_interval}}, num_batches=4,
         num_images=2, num_styles={{_base_.num_styles}}, num_positions=256, lam={{_base_.lam}}),
    dict(type='SensitivitySparsityHook', s={{_base_.sparsity}}),
    dict(type='UnitPruningHook', prune_iters={{_base_.prune_iters}}, ratio={{_base_.prune_ratio}},
         threshold={{_base_.threshold}}, importance=dict(type='BNScaleImportance'),
         min_keep_ratio=0.1, trace_shape=(3, 128, 128), flops_shape=(3, 512, 1024)),
    dict(type='PrunedCheckpointHook'),
]

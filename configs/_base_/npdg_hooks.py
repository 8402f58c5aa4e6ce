# The NPDG hooks of every recipe, as named settings. A recipe inherits this file
# and defines the settings they refer to ('${name}', resolved after inheritance
# and --cfg-options): perturbation, stylized_ratio, ascent_steps, lam, num_styles,
# stats_interval, stats_batches, sparsity, prune_iters, prune_ratio,
# target_flops_ratio, threshold, trace_shape, flops_input. The controls
# (configs/controls/) reuse these hooks by reference and change only what they
# claim to change.

# FLOPs / params of the evaluated model in tools/test.py.
complexity_hook = dict(type='ModelComplexityHook', input_shape='${flops_input}')
# Style perturbation on a share of every batch, throughout training.
style_hook = dict(type='StylePerturbationHook', perturbation='${perturbation}',
                  stylized_ratio='${stylized_ratio}', ascent_steps='${ascent_steps}')
# 2 content images x K styles, 256 positions each, stats_batches batches per refresh.
statistics_hook = dict(type='SensitivityStatisticsHook', interval='${stats_interval}',
                       num_batches='${stats_batches}', num_images=2,
                       num_styles='${num_styles}', num_positions=256, lam='${lam}')
# Sensitivity-reweighted L1 on BN gammas / head gates (proximal) until the last prune
# step; the share of scales below the threshold is logged at every statistics refresh.
sparsity_hook = dict(type='SensitivitySparsityHook', s='${sparsity}', threshold='${threshold}',
                     log_interval='${stats_interval}')
# Global |gamma| ranking (max over coupled BNs; head gates), >= 10 % of every layer kept;
# classifiers and auxiliary-head-only channels never units; optimizer state sliced.
pruning_hook = dict(type='UnitPruningHook', prune_iters='${prune_iters}', ratio='${prune_ratio}',
                    target_flops_ratio='${target_flops_ratio}', threshold='${threshold}',
                    importance=dict(type='BNScaleImportance'), min_keep_ratio=0.1,
                    trace_shape='${trace_shape}', flops_shape='${flops_input}')
# Pruned checkpoints carry their structure and reload strictly.
checkpoint_hook = dict(type='PrunedCheckpointHook')
# A recipe lists them itself (mmengine refuses a key defined by two bases):
# custom_hooks = ['${complexity_hook}', '${style_hook}', '${statistics_hook}',
#                 '${sparsity_hook}', '${pruning_hook}', '${checkpoint_hook}']

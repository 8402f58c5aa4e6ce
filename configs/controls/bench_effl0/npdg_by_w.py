# Ablation of the ImageNet-regime NPDG recipe (configs/bench_effl0/npdg.py): prune by NPDG's
# sensitivity w directly (importance 1 - w: the most domain-sensitive and redundant
# units go first), with the same statistics but no sparse training.
_base_ = ['../../bench_effl0/npdg.py']
pruning_hook = dict(importance=dict(_delete_=True, type='SensitivityImportance'))
custom_hooks = ['${complexity_hook}', '${style_hook}', '${statistics_hook}',
                '${pruning_hook}', '${distillation_hook}', '${checkpoint_hook}']

# Criterion arm on the ImageNet-regime NPDG recipe (configs/bench_effl0/npdg.py):
# DSS (Sun et al., 2023): cosine similarity of each unit's mean map on clean vs
# style-perturbed source images (never the targets), per-layer uniform ratio,
# iterative: 3 steps ending at the recipe's prune iteration (150), each removing the same
# share of what remains (1 - (1 - p) ** (1 / 3)); same perturbation and fine-tuning.
_base_ = ['../../bench_effl0/npdg.py']
prune_iters = [90, 120, 150]
pruning_hook = dict(importance=dict(_delete_=True, type='DSSImportance'), scope='layer',
                    schedule='geometric')
custom_hooks = ['${complexity_hook}', '${style_hook}', '${pruning_hook}', '${distillation_hook}',
                '${checkpoint_hook}']

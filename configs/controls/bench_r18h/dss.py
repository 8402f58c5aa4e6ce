# Criterion arm on the benchmark NPDG recipe (configs/bench/npdg.py):
# DSS (Sun et al., 2023): cosine similarity of each unit's mean map on clean vs
# style-perturbed source images (never the targets), per-layer uniform ratio,
# iterative: 3 steps ending at the recipe's prune iteration, each removing the same
# share of what remains (1 - (1 - p) ** (1 / 3)); same perturbation and fine-tuning.
_base_ = ['../../bench/npdg.py']
prune_iters = [120, 160, 200]
pruning_hook = dict(importance=dict(_delete_=True, type='DSSImportance'), scope='layer',
                    schedule='geometric')
custom_hooks = ['${complexity_hook}', '${style_hook}', '${pruning_hook}',
                '${checkpoint_hook}']

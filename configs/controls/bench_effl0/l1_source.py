# Bar (d) of the ImageNet regime: is the model over-complete for the source?
# Plain L1 filter-norm pruning (per-layer mean normaliser) of the source-only recipe
# (../../bench_effl0/source_only.py: no perturbation, no statistics, no sparse
# training), at the recipe's prune step (150 of 600) and fine-tuned to the end
# with the recipe's distilled fine-tune (the warm start as teacher;
# --cfg-options kd_weight=0 for a plain one); tools/compare.py --bars runs it at
# 0.75x FLOPs against unpruned source-only on held-out source frames.
_base_ = ['../../bench_effl0/npdg.py']
target_flops_ratio = 0.75
prune_ratio = None
pruning_hook = dict(importance=dict(_delete_=True, type='L1Importance', normalizer='mean'))
custom_hooks = ['${complexity_hook}', '${pruning_hook}', '${distillation_hook}', '${checkpoint_hook}']

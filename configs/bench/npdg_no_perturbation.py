# Ablation (benchmarks/accuracy.py --study ablations): NPDG without the training
# perturbation. The statistics still render K styles (AdvStyle) to measure each
# unit's sensitivity; the training batches stay clean.
_base_ = ['./npdg.py']
custom_hooks = ['${complexity_hook}', '${statistics_hook}', '${sparsity_hook}',
                '${pruning_hook}', '${checkpoint_hook}']

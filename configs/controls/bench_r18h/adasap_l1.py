# AdaSAP arm on the benchmark regime (Bair et al., ICLR 2024; methods.md section 4):
# the L1 control (./l1.py: L1 filter norm, per-layer mean normaliser, pruned at 200)
# trained with AdaSAP's sharpness-aware step instead of plain SGD steps. Phases:
# adaptive radii by the same L1 importance before the prune step (0-199), the prune
# at 200 (one step, as every arm of the benchmark, so that the only difference from
# ./l1.py is the step), one uniform radius after it (200-599).
# How the settings were chosen (no target label used): rho_min = 0.01, rho_max = 2.0
# and eta = 0.01 are the paper's adaptive-SAM defaults (methods.md); the uniform
# radius rho = 1.0 is the middle of that range (not tuned); radii re-scored every
# 10 iterations (L1 costs nothing). normalization='global' is ASAM's: one norm of
# T*g over all weights, each entry scaled by its unit's radius. The per-unit norm
# ('unit') moves every unit by rho_i (up to 200 %) of its own weights: seed 0 of
# this arm collapsed with it (training loss at 600: 2.68 vs 0.95 for ./l1.py; mean
# target mIoU 4.84 vs 16.23), a failure visible on the training loss alone. Cost: one extra forward/backward per iteration
# (benchmarks/adasap_cost.py).
_base_ = ['./l1.py']
adasap_rho = 1.0
adasap_hook = dict(type='AdaSAPHook', importance=dict(type='L1Importance', normalizer='mean'),
                   rho_min=0.01, rho_max=2.0, rho='${adasap_rho}', normalization='global',
                   score_interval=10,
                   trace_shape='${trace_shape}')
custom_hooks = ['${complexity_hook}', '${style_hook}', '${adasap_hook}', '${pruning_hook}',
                '${checkpoint_hook}']

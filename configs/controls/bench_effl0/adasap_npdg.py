# AdaSAP arm on the ImageNet regime (Bair et al., ICLR 2024; methods.md section 4):
# the NPDG recipe (../../bench_effl0/npdg.py: sensitivity statistics, sensitivity-weighted
# sparse training, |gamma| pruning at 150) trained with AdaSAP's sharpness-aware step.
# The radii follow NPDG's own importance (|gamma|, the pruning criterion): adaptive
# before the prune step (0-149), one uniform radius after it (150-299).
# Settings as in ../bench_r18h/adasap_l1.py (rho_min 0.01, rho_max 2.0, eta 0.01 from the paper;
# uniform rho = 1.0, the middle of the range, not tuned).
_base_ = ['../../bench_effl0/npdg.py']
adasap_rho = 1.0
adasap_hook = dict(type='AdaSAPHook', importance=dict(type='BNScaleImportance'),
                   rho_min=0.01, rho_max=2.0, rho='${adasap_rho}', normalization='global',
                   score_interval=10,
                   trace_shape='${trace_shape}')
custom_hooks = ['${complexity_hook}', '${style_hook}', '${statistics_hook}',
                '${sparsity_hook}', '${adasap_hook}', '${pruning_hook}', '${distillation_hook}', '${checkpoint_hook}']

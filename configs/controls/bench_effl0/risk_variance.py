# Criterion arm on the ImageNet-regime NPDG recipe (configs/bench_effl0/npdg.py):
# domain-risk variance (Cai et al., 2022): Taylor of mean_d R_d + beta * Var_d R_d over
# the clean batch and 3 fixed style draws of it (beta = 1, the paper's default),
# normalised per layer (mean), ranked globally; same perturbation, ratio and prune step.
_base_ = ['../../bench_effl0/npdg.py']
pruning_hook = dict(importance=dict(_delete_=True, type='DomainRiskVarianceImportance',
                                    beta=1.0, num_domains=3, normalizer='mean'))
custom_hooks = ['${complexity_hook}', '${style_hook}', '${pruning_hook}', '${distillation_hook}',
                '${checkpoint_hook}']

# Bar (d) of the ImageNet regime with a distilled fine-tune: ./l1_source.py (plain
# L1 at 0.75x FLOPs, no perturbation, prune at 150 of 600) whose 450 fine-tune
# iterations add pixel-wise distillation from the unpruned warm start (the
# DistillationHook: weight * T^2 * mean pixel KL(teacher || student) on the decode
# head's logits). weight 1 and T 1 are the textbook defaults, set before any run
# (not tuned); benchmarks/effl0_bar_d.py judges them on held-out source only.
_base_ = ['./l1_source.py']
kd_weight = 1.0
kd_temperature = 1.0
distillation_hook = dict(type='DistillationHook', teacher_checkpoint='${warm_start}',
                         weight='${kd_weight}', temperature='${kd_temperature}')
custom_hooks = ['${complexity_hook}', '${pruning_hook}', '${distillation_hook}',
                '${checkpoint_hook}']

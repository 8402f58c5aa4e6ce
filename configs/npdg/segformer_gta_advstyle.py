# configs/npdg/segformer_gta.py with the AdvStyle perturbation (adversarial per-image
# RGB mean/std, one ascent step; no pretrained network, so no DSP weights).
# Everything else, hooks included, is the same recipe: the hooks refer to the
# `perturbation` setting, which is all this file changes.
_base_ = ['./segformer_gta.py']
perturbation = dict(_delete_=True, type='AdvStyle')

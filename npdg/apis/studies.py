"""The comparison studies as data: regimes, their arms, budgets and bars.

``tools/compare.py`` runs a regime's plan (seed by seed: the unpruned
controls, then every criterion arm at every budget); the tests load every
config listed here at every budget. A regime is a dict:

* ``controls``: unpruned arms, name -> config (one run per seed).
* ``criteria``: pruned arms, name -> config; the budget's options set the target.
* ``extra``: pruned arms run only on request (``--arms``).
* ``budgets``: name -> config options (``prune_ratio`` / ``target_flops_ratio``).
* ``warm_start``: the config that trains the warm start every arm loads
  (``warm_start`` option), or None when the arms start from ImageNet weights.
* ``bars``: the regime's sanity runs (``--bars``), name -> (config, options).

Adding an arm is one line here plus its config; its tests follow.
"""
TARGETS = ('cityscapes', 'bdd100k', 'mapillary')

_E = 'configs/bench_effl0/'
_EC = 'configs/controls/bench_effl0/'
_R = 'configs/bench/'
_RC = 'configs/controls/bench_r18h/'

REGIMES = dict(
    # docs/results.md "ImageNet regime": DeepLabV3+ on EfficientNet-Lite0 initialised from
    # the official ImageNet weights, adapted to the source once (3000 iterations),
    # 300 iterations per arm.
    effl0=dict(
        title='DeepLabV3+ EfficientNet-Lite0 from ImageNet (data/synthetic_bench)',
        controls=dict(source_only=_E + 'source_only.py', perturb_only=_EC + 'perturb_only.py'),
        criteria=dict(
            npdg=_E + 'npdg.py',
            npdg_lam1=_EC + 'npdg_lam1.py',
            slimming=_EC + 'slimming.py',
            l1=_EC + 'l1.py',
            random=_EC + 'random.py',
            taylor=_EC + 'taylor.py',
            dss=_EC + 'dss.py',
            risk_variance=_EC + 'risk_variance.py',
            adasap_npdg=_EC + 'adasap_npdg.py',
        ),
        # on request: prune by w, and s = 0 / 0.01 (does sparse training hurt?)
        extra=dict(npdg_by_w=_EC + 'npdg_by_w.py', npdg_s0=_EC + 'npdg_s0.py',
                   npdg_s001=_EC + 'npdg_s001.py'),
        budgets=dict(flops75=dict(prune_ratio=None, target_flops_ratio=0.75),
                     flops50=dict(prune_ratio=None, target_flops_ratio=0.5)),
        warm_start=_E + 'pretrain_source.py',
        bars=dict(
            source_only_x1_5=(_E + 'source_only.py', dict(max_iters=900)),  # 1.5 x 600
            l1_source_flops75=(_EC + 'l1_source.py', {}),
            **{f'oracle_{t}': (_E + f'oracle_{t}.py', {}) for t in TARGETS}),
    ),
    # docs/results.md "from-scratch regime": a half-width ResNet-18 warm-started on the
    # source (configs/bench/pretrain_source.py, NOT ImageNet), 600 iterations per arm.
    r18h=dict(
        title='DeepLabV3+ half-width ResNet-18, source warm start (data/synthetic_bench)',
        controls=dict(source_only=_R + 'source_only.py', perturb_only=_RC + 'perturb_only.py'),
        criteria=dict(
            random=_RC + 'random.py', l1=_RC + 'l1.py', l2=_RC + 'l2.py',
            slimming=_RC + 'slimming.py', taylor=_RC + 'taylor.py', hessian=_RC + 'hessian.py',
            dss=_RC + 'dss.py', risk_variance=_RC + 'risk_variance.py', npdg=_R + 'npdg.py',
            npdg_by_w=_RC + 'npdg_by_w.py', adasap_l1=_RC + 'adasap_l1.py',
            adasap_npdg=_RC + 'adasap_npdg.py'),
        extra={},
        budgets=dict(r30=dict(prune_ratio=0.3, target_flops_ratio=None),
                     flops50=dict(prune_ratio=None, target_flops_ratio=0.5)),
        warm_start=_R + 'pretrain_source.py',
        bars=dict(
            source_only_x1_5=(_R + 'source_only.py', dict(max_iters=900)),
            **{f'oracle_{t}': (_R + f'oracle_{t}.py', {}) for t in TARGETS}),
    ),
)
DEFAULT_REGIME = 'effl0'

_B = 'configs/bench/'
# The from-scratch regime's side studies (``benchmarks/accuracy.py --study``): each a
# dict of ``runs`` (name -> (config, options)), the runs a plain call makes
# (``default``, else all) and the seeds (``seeds``, else [0]). Every run loads the
# regime's warm start (``warm_start`` option) and is cached like a comparison run.
STUDIES = dict(
    main=dict(
        runs=dict(source_only=(_B + 'source_only.py', {}),
                  perturb_only=(_RC + 'perturb_only.py', {}),
                  npdg=(_RC + 'npdg_flops50.py', {}),
                  slimming=(_RC + 'slimming_flops50.py', {}),
                  l1=(_RC + 'l1_flops50.py', {}),
                  l2=(_RC + 'l2_flops50.py', {})),
        default=['source_only', 'perturb_only', 'npdg', 'slimming', 'l1'],
        seeds=[0, 1, 2]),
    ablations=dict(runs=dict(
        npdg_r30=(_B + 'npdg.py', {}),
        npdg_r30_lam0_binary_only=(_B + 'npdg.py', {'lam': 0.0}),
        npdg_r30_lam1_unary_only=(_B + 'npdg.py', {'lam': 1.0}),
        npdg_r10=(_B + 'npdg.py', {'prune_ratio': 0.1}),
        npdg_r20=(_B + 'npdg.py', {'prune_ratio': 0.2}),
        npdg_r40=(_B + 'npdg.py', {'prune_ratio': 0.4}),
        npdg_r30_no_perturbation=(_B + 'npdg_no_perturbation.py', {}),
        slimming_r30=(_RC + 'slimming.py', {}),
        l1_r30=(_RC + 'l1.py', {}))),
    perturbation=dict(runs=dict(
        perturb_share25=(_RC + 'perturb_only.py', {'stylized_ratio': 0.25}),
        perturb_share50=(_RC + 'perturb_only.py', {}),
        perturb_share100=(_RC + 'perturb_only.py', {'stylized_ratio': 1.0}),
        perturb_random_styles=(_RC + 'perturb_only.py', {'ascent_steps': 0}),
        perturb_step03=(_RC + 'perturb_only.py', {'perturbation.step_size': 0.3}),
        perturb_jitter_x2=(_RC + 'perturb_only.py', {'perturbation.mean_jitter': 0.2,
                                                     'perturbation.std_jitter': 0.4}))),
    # the label-free choice of s (configs/bench/npdg.py) by the pseudo-target mIoU
    sparsity=dict(runs={
        **{f'npdg_s{s:g}': (_RC + 'npdg_flops50.py', {'sparsity': s}) for s in (0.03, 0.1, 0.3)},
        **{f'npdg_s{s:g}_prune200': (_RC + 'npdg_flops50.py', {'sparsity': s, 'prune_iters': [200]})
           for s in (0.1, 0.3)}}),
    oracle=dict(runs={f'oracle_{t}': (_B + f'oracle_{t}.py', {}) for t in TARGETS}),
    # 'source_only' is the main study's run (the same key: reused from the cache)
    convergence=dict(runs=dict(source_only=(_B + 'source_only.py', {}),
                               source_only_900=(_B + 'source_only.py', {'max_iters': 900}))),
)


def arms(regime):
    """Every arm of a regime in table order: controls, criteria, extra."""
    r = REGIMES[regime]
    return [*r['controls'], *r['criteria'], *r['extra']]


def default_arms(regime):
    """The arms a plain ``tools/compare.py`` runs (the extra ones need ``--arms``)."""
    r = REGIMES[regime]
    return [*r['controls'], *r['criteria']]


def config_of(regime, arm):
    """Config path of an arm."""
    r = REGIMES[regime]
    return {**r['controls'], **r['criteria'], **r['extra']}[arm]


def plan(regime, arm_names, budgets, seeds):
    """The runs in order: seed by seed, controls first, then budget by budget.

    Args:
        regime (str): A key of :data:`REGIMES`.
        arm_names (list[str]): Arms to run.
        budgets (list[str]): Budget names of the regime.
        seeds (list[int]): Seeds.

    Returns:
        list[dict]: ``arm``, ``budget`` (None for controls), ``seed``,
        ``config``, ``options``.

    Raises:
        KeyError: An arm or budget the regime does not have (names the choices).
    """
    r = REGIMES[regime]
    for name in arm_names:
        if name not in arms(regime):
            raise KeyError(f'arm {name!r} is not in regime {regime!r}; choose from '
                           f'{arms(regime)}')
    for budget in budgets:
        if budget not in r['budgets']:
            raise KeyError(f'budget {budget!r} is not in regime {regime!r}; choose from '
                           f'{list(r["budgets"])}')
    runs = []
    for seed in seeds:
        for arm in arm_names:
            if arm in r['controls']:
                runs.append(dict(arm=arm, budget=None, seed=seed, config=r['controls'][arm],
                                 options={}))
        for budget in budgets:
            for arm in arm_names:
                if arm not in r['controls']:
                    runs.append(dict(arm=arm, budget=budget, seed=seed,
                                     config=config_of(regime, arm),
                                     options=dict(r['budgets'][budget])))
    return runs

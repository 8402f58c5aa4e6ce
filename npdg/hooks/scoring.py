"""The scoring context of a training run: what hooks hand a criterion.

Shared by every hook that scores units during training (the pruning hook at
its prune steps, the AdaSAP hook for its radii), so that a criterion sees
the same kind of data whichever hook asks.
"""
from npdg.engine.run_state import run_state
from npdg.importance import ScoringBatches, ScoringContext

SCORING_DEFAULTS = dict(num_batches=4, batch_size=None, target_dataset=None)


def check_scoring(scoring, owner):
    """Validate a hook's ``scoring`` dict and fill in the defaults.

    Args:
        scoring (dict, optional): ``num_batches``, ``batch_size``,
            ``target_dataset``.
        owner (str): The hook's name, for the error.

    Returns:
        dict: The complete settings.

    Raises:
        ValueError: For an unknown key.
    """
    scoring = dict(scoring or {})
    unknown = sorted(set(scoring) - set(SCORING_DEFAULTS))
    if unknown:
        raise ValueError(f'{owner}: unknown scoring keys {unknown}; use '
                         f'{", ".join(SCORING_DEFAULTS)}.')
    return dict(SCORING_DEFAULTS, **scoring)


def runner_scoring_context(runner, model, done, num_batches=4, batch_size=None,
                           target_dataset=None):
    """A scoring context over the run's training data (drawn lazily).

    The batches are ``num_batches`` batches of ``batch_size`` training images
    (default: the train loader's batch size) drawn with the run's seed and
    ``done`` (the training loader is not touched); the run's style
    perturbation and NPDG statistics come from the shared run state; target
    images (oracle options only) from ``target_dataset``, a dataset config.

    Args:
        runner (Runner): The runner.
        model (nn.Module): Bare segmentor.
        done (int): Iterations completed (seeds the draw).
        num_batches (int): Batches.
        batch_size (int, optional): Images per batch.
        target_dataset (dict, optional): Unlabelled target dataset config.

    Returns:
        ScoringContext: The context.
    """
    state = run_state(runner)
    seed = int(getattr(runner, 'seed', 0) or 0) * 1000003 + done
    loop = getattr(runner, '_train_loop', None)
    loader = getattr(loop, 'dataloader', None)
    batches = target = None
    if loader is not None and hasattr(loader, 'dataset'):
        size = batch_size or loader.batch_size or 1
        batches = ScoringBatches(loader.dataset, loader.collate_fn, size, num_batches, seed)
        if target_dataset is not None:
            from mmseg.registry import DATASETS
            dataset = DATASETS.build(target_dataset)
            target = ScoringBatches(dataset, loader.collate_fn, size, num_batches, seed)
    return ScoringContext(model, batches=batches, perturbation=state.perturbation,
                          statistics=state.statistics, target_batches=target, seed=seed)

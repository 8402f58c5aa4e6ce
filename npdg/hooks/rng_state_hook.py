"""Save and restore the global torch RNG so a resumed run repeats the original."""
import torch
from mmseg.registry import HOOKS

from npdg.engine import NpdgHook


@HOOKS.register_module()
class RNGStateHook(NpdgHook):
    """Carry the global torch RNG state through checkpoints.

    MMEngine reseeds on resume and skips the data already seen, which replays
    the data pipeline's numpy/python randomness exactly, but the global torch
    generator (dropout, random layer choices, style draws) restarts from the
    seed. This hook stores the generator state with every checkpoint and, on
    ``resume``, puts it back right before the first resumed iteration, so an
    interrupted run finishes with the same weights as an uninterrupted one.

    The restore runs before every other hook's ``before_train_iter`` (some of
    them draw random numbers, e.g. the style perturbation's ascent through
    dropout), hence the very high priority.

    Args:
        priority (str): Hook priority. Defaults to ``'VERY_HIGH'``.
    """

    priority = 'VERY_HIGH'
    state_name = 'rng_state'

    def __init__(self, priority='VERY_HIGH'):
        self.priority = priority
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint):
        """Store the torch (and CUDA) RNG states in the checkpoint.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint being saved; changed in place.
        """
        state = dict(torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        self.save_state(checkpoint, state)

    def after_load_checkpoint(self, runner, checkpoint):
        """Keep the saved RNG state when the checkpoint resumes training.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        state = self.resumed_state(runner, checkpoint)
        if state is not None:
            self._pending = state

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        """Restore the pending RNG state once, before the first resumed step.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the iteration.
            data_batch (dict, optional): The batch.
        """
        if self._pending is None:
            return
        torch.set_rng_state(self._pending['torch'])
        if 'cuda' in self._pending and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._pending['cuda'])
        self._pending = None

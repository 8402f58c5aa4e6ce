"""Hook that reports the model's FLOPs and parameters with the metrics."""
from typing import Dict, Optional, Sequence

from mmengine.hooks.runtime_info_hook import RuntimeInfoHook
from mmseg.registry import HOOKS

from npdg.engine import NpdgHook

from ..analysis.complexity import format_complexity, format_input_shape, segmentor_complexity


@HOOKS.register_module()
class ModelComplexityHook(NpdgHook):
    """Measure FLOPs/params before testing (and validating); add them to metrics.

    ``before_test`` (and ``before_val`` when ``on_val``) measures the
    runner's model with :func:`npdg.analysis.segmentor_complexity` (weights
    are loaded by then; it is measured again every time, so a model pruned
    between validations is reported as it is now) and logs one line. Then
    ``after_test_epoch`` / ``after_val_epoch`` add ``gflops``, ``params_m``
    (inference parameters, millions) and ``flops_input`` (e.g.
    ``'3x512x1024'``) to the ``metrics`` dict in place. If counting fails
    (a model the tracer cannot handle), a warning is logged and nothing is
    added; the evaluation goes on.

    MMEngine's ``RuntimeInfoHook`` (priority VERY_HIGH) copies the metrics
    into the message hub before this hook runs, and ``LoggerHook``
    (BELOW_NORMAL) writes the log line and metrics JSON from the message
    hub, so the values are also put there. Keep this hook's priority above
    BELOW_NORMAL. Numbers reach the log line and both JSON files; the string
    ``flops_input`` reaches the log line, and the JSON only for tests
    (mmengine writes non-scalars in the test JSON but not in the val
    scalars file).

    Args:
        input_shape (Sequence[int]): (C, H, W) of the measured input.
        on_val (bool): Also measure and report during validation.
        on_test (bool): Measure and report during testing.
        priority (int | str): Hook priority. Defaults to 'NORMAL'.
    """

    def __init__(self,
                 input_shape: Sequence[int] = (3, 512, 1024),
                 on_val: bool = False,
                 on_test: bool = True,
                 priority='NORMAL') -> None:
        self.input_shape = tuple(input_shape)
        self.on_val = on_val
        self.on_test = on_test
        self.priority = priority
        self.info: Optional[Dict] = None

    def before_val(self, runner) -> None:
        """Measure the model before validation when ``on_val``."""
        if self.on_val:
            self._measure(runner)

    def before_test(self, runner) -> None:
        """Measure the model before testing when ``on_test``."""
        if self.on_test:
            self._measure(runner)

    def after_val_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        """Add the complexity to the validation metrics when ``on_val``."""
        if self.on_val:
            self._report(runner, metrics, 'val')

    def after_test_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        """Add the complexity to the test metrics when ``on_test``."""
        if self.on_test:
            self._report(runner, metrics, 'test')

    def _measure(self, runner) -> None:
        """Measure the runner's model and log the result.

        Args:
            runner (Runner): The runner.
        """
        self.info = None
        try:
            self.info = segmentor_complexity(runner.model, self.input_shape)
        except Exception as err:  # noqa: BLE001 (never abort an evaluation)
            reason = f'{type(err).__name__}: {err}'
            runner.logger.warning(
                f'ModelComplexityHook: counting FLOPs failed ({reason}); '
                'gflops/params_m are not reported.')
            return
        runner.logger.info(f'Model complexity: {format_complexity(self.info)}')

    def complexity_metrics(self) -> Dict:
        """Return the values added to the metrics.

        Returns:
            dict: ``gflops`` (float), ``params_m`` (float) and
            ``flops_input`` (str); empty before any measurement.
        """
        if self.info is None:
            return {}
        return dict(
            gflops=float(self.info['gflops']),
            params_m=self.info['params'] / 1e6,
            flops_input=format_input_shape(self.info['input_shape']))

    def _report(self, runner, metrics: Optional[Dict], mode: str) -> None:
        """Add the values to ``metrics`` and, if needed, the message hub.

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): The epoch's metrics (updated in place).
            mode (str): ``'val'`` or ``'test'``.
        """
        values = self.complexity_metrics()
        if metrics is not None:
            metrics.update(values)
        if self._runtime_info_hook_runs_later(runner):
            return
        message_hub = getattr(runner, 'message_hub', None)
        if message_hub is None:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)):
                message_hub.update_scalar(f'{mode}/{key}', value)
            else:
                message_hub.update_info(f'{mode}/{key}', value)

    def _runtime_info_hook_runs_later(self, runner) -> bool:
        """Return whether a ``RuntimeInfoHook`` is registered after this hook.

        Args:
            runner (Runner): The runner.

        Returns:
            bool: True when that hook will copy ``metrics`` into the message
            hub itself.
        """
        hooks = list(getattr(runner, 'hooks', []) or [])
        if self not in hooks:
            return False
        later = hooks[hooks.index(self) + 1:]
        return any(isinstance(hook, RuntimeInfoHook) for hook in later)

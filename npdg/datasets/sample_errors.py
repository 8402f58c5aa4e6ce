"""Errors raised while loading one sample name the sample's files.

Decoding errors come from deep inside mmcv/PIL without a path ("image file is
truncated", a reshape or collate error from a 3-channel label). Datasets that
mix in :class:`NamedSampleErrors` (and :class:`npdg.datasets.
MultiTargetDataset` for every target it wraps) re-raise them as
:class:`DataSampleError` naming the image and label files and what to do.
"""


class DataSampleError(RuntimeError):
    """A sample could not be loaded; the message names its files."""


def _hint(err):
    text = str(err).lower()
    if 'truncated' in text or 'cannot identify image' in text or 'broken data' in text:
        return (' The file is truncated or corrupt: download/extract it again, or re-run the '
                'converter that wrote it.')
    return ''


def sample_error(err, info, where=''):
    """The error to raise for ``err`` while loading the sample ``info``.

    Args:
        err (Exception): What the pipeline raised.
        info (dict): The sample's data info (``img_path``, ``seg_map_path``).
        where (str): Extra context (e.g. ``"target 'cityscapes'"``).

    Returns:
        Exception: ``err`` itself if its message already names the sample's
        label or image file, else a :class:`DataSampleError` that does.
    """
    info = info if isinstance(info, dict) else {}
    paths = [p for p in (info.get('seg_map_path'), info.get('img_path')) if p]
    if isinstance(err, DataSampleError) or any(str(p) in str(err) for p in paths):
        return err
    context = f' ({where})' if where else ''
    return DataSampleError(
        f'{type(err).__name__}: {err} -- while loading img_path={info.get("img_path")!r}, '
        f'seg_map_path={info.get("seg_map_path")!r}{context}.{_hint(err)}')


class NamedSampleErrors:
    """Mixin for mmengine datasets: pipeline errors name the sample's files."""

    def prepare_data(self, idx):
        """Run the pipeline on sample ``idx``, naming its files on failure.

        Args:
            idx (int): Sample index.

        Returns:
            Any: The pipeline's output.
        """
        try:
            return super().prepare_data(idx)
        except Exception as err:  # noqa: BLE001 - re-raised with the file names
            new = sample_error(err, self.get_data_info(idx), type(self).__name__)
            if new is err:
                raise
            raise new from err

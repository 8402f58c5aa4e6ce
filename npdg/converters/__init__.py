"""Label converters: raw dataset labels -> the 19 Cityscapes train ids.

Thin command-line front ends live in ``tools/dataset_converters``.
"""
from .cityscapes import convert_cityscapes
from .common import ConversionSummary, ConverterInputError
from .gta import convert_gta, write_gta_split_lists
from .mapillary import convert_mapillary
from .synthia import convert_synthia

__all__ = ['convert_cityscapes', 'convert_gta', 'write_gta_split_lists',
           'convert_mapillary', 'convert_synthia', 'ConversionSummary', 'ConverterInputError']

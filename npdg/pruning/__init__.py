"""Structural pruning support: model structure capture and rebuild."""
from .structure import (
                        STRUCTURE_KEY,
                        STRUCTURE_VERSION,
                        add_structure,
                        apply_structure,
                        capture_structure,
                        check_state_dict_matches,
                        checkpoint_state_dict,
                        compare_state_dict,
                        get_structure,
                        load_pruned_checkpoint,
                        module_kind,
)

__all__ = [
    'STRUCTURE_KEY', 'STRUCTURE_VERSION', 'add_structure', 'apply_structure',
    'capture_structure', 'check_state_dict_matches', 'checkpoint_state_dict',
    'compare_state_dict', 'get_structure', 'load_pruned_checkpoint',
    'module_kind'
]
from . import optimizer_sync  # noqa: E402,F401

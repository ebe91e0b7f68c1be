"""Real QEMU migrations for checking the simulator: a page-dirtying test guest,
a QMP client and a harness that runs and records one precopy migration.

Standard library and numpy only; importing works without QEMU installed.
``import toolkit`` does not import this subpackage.
"""
from .guest import build_guest, guest_image
from .harness import MigrationResult, qemu_version, run_migration
from .qmp import QMPClient, QMPError
from .readers import read_samples, read_trace, samples_dataset, trace_dataset

__all__ = ["MigrationResult", "QMPClient", "QMPError", "build_guest", "guest_image",
           "qemu_version", "read_samples", "read_trace", "run_migration", "samples_dataset",
           "trace_dataset"]

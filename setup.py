"""Packaging hook: the shipped datasets go into the wheel as ``toolkit/_datasets``
(the ``.nc`` files and their ``.png`` maps, ``README.md``, the configs that
regenerate them in ``configs/``, and the validation study's recorded runs in
``qemu-validation/runs/``), so ``toolkit.open_dataset("rescue-default")``, the
notebooks and ``python -m toolkit sweep --config`` work outside the checkout.
Everything else is in ``pyproject.toml``."""
import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).parent
#: what of datasets/ is shipped (glob patterns relative to it)
SHIPPED = ("*.nc", "*.png", "README.md", "configs/*.toml",
           "qemu-validation/runs/*/*.json", "qemu-validation/runs/*/*.jsonl",
           "qemu-validation/runs/*/*.log")


class BuildWithDatasets(build_py):
    def run(self):
        super().run()
        if self.editable_mode:            # a checkout reads datasets/ directly
            return
        source = HERE / "datasets"
        target = pathlib.Path(self.build_lib) / "toolkit" / "_datasets"
        for pattern in SHIPPED:
            for path in sorted(source.glob(pattern)):
                dest = target / path.relative_to(source)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)


setup(cmdclass={"build_py": BuildWithDatasets})

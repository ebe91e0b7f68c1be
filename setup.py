"""Packaging hook: the shipped datasets (``datasets/*.nc``, ``*.png``) go into the
wheel as ``toolkit/_datasets``, so ``toolkit.open_dataset("rescue-default")``
works outside the checkout. Everything else is in ``pyproject.toml``."""
import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).parent


class BuildWithDatasets(build_py):
    def run(self):
        super().run()
        if self.editable_mode:            # a checkout reads datasets/ directly
            return
        target = pathlib.Path(self.build_lib) / "toolkit" / "_datasets"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted((HERE / "datasets").glob("*")):
            if path.suffix in (".nc", ".png"):
                shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildWithDatasets})

# Copyright (c) mmpvg contributors. All rights reserved.
"""Build hook: ship configs/, tools/ and model-index.yml in the package.

OpenMMLab's ``mim`` finds a package's configs, tools and model index under
``<package>/.mim/`` of the installed package, which is where mmpretrain,
mmdet and mmseg install theirs. A regular build (``pip install .``, a wheel)
copies them there; everything else about the project is in pyproject.toml.
An editable install keeps them in the checkout (mim cannot use that one:
README "mim and the upstream tools").
"""
import os
import os.path as osp
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
# what mim reads: `mim train/test` run .mim/tools/{train,test}.py and find a
# config by file name under .mim/configs; `mim search` reads the model index
# (which names the metafiles under configs/)
MIM_FILES = ('configs', 'tools', 'model-index.yml')


class BuildPyWithMim(build_py):
    """``build_py`` that also writes ``mmpvg/.mim/`` into the build."""

    def run(self):
        super().run()
        if self.editable_mode:
            return
        target = osp.join(self.build_lib, 'mmpvg', '.mim')
        # a fresh copy: a config deleted from the checkout must not linger in
        # the build directory of an earlier build
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        for name in MIM_FILES:
            src = osp.join(ROOT, name)
            if osp.isdir(src):
                shutil.copytree(src, osp.join(target, name),
                                ignore=shutil.ignore_patterns(
                                    '__pycache__', '*.pyc'))
            else:
                shutil.copyfile(src, osp.join(target, name))


setup(cmdclass={'build_py': BuildPyWithMim})

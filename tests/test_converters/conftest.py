"""Fixtures of the converter tests; the reference models are in
mmpvg.testing.references (the command-line tests use them too)."""
from mmpvg.testing.references import images  # noqa: F401  (a fixture)

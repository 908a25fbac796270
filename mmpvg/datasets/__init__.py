from .demo_data import make_digits_classification

__all__ = ['make_digits_classification']

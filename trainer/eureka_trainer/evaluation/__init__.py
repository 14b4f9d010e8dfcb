"""Evaluation: benchmark runs, re-scoring of saved predictions, evaluation during training.

Light at import (no torch): the heavy parts (`offline`, `runner`) import torch and transformers
only when called.
"""

"""Hierarchical pronunciation scorer: phone, word and sentence scores from front-end features."""
from .data import FeatureScaler, ScorerBatch, ScorerExample, build_examples, collate
from .losses import LossConfig, phone_class_weights, scoring_loss
from .model import HierarchicalScorer, ScorerConfig, ScorerOutput
from .pretrain import PhonePretrainer, mask_phones
from .train import EpochRecord, UtterancePrediction, evaluate, fit, predict, pretrain

__all__ = ["EpochRecord", "FeatureScaler", "HierarchicalScorer", "LossConfig", "PhonePretrainer", "ScorerBatch",
           "ScorerConfig", "ScorerExample", "ScorerOutput", "UtterancePrediction", "build_examples", "collate",
           "evaluate", "fit", "mask_phones", "phone_class_weights", "predict", "pretrain", "scoring_loss"]

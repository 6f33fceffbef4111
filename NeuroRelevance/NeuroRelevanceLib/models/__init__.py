"""Loading trained networks safely: model cards + weights, TorchScript, exported programs.

Nothing in a model file runs unless the caller marks the file as trusted: pickles, pickled
payloads inside ``.pt2`` archives, TorchScript code that touches files and weights outside a
card's folder are refused otherwise (docs/security.md).
"""
from .card import InputSpec, ModelCard, OutputSpec, card_from_dict, read_card
from .loading import LoadedModel, load_model, open_model, save_weights

__all__ = ["InputSpec", "LoadedModel", "ModelCard", "OutputSpec", "card_from_dict", "load_model", "open_model",
           "read_card", "save_weights"]

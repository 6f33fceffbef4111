"""Loading trained networks safely: model cards + weights, TorchScript, exported programs.

A pickled full module is loaded only when the caller marks the file as trusted: unpickling runs
arbitrary code.
"""
from .card import InputSpec, ModelCard, OutputSpec, card_from_dict, read_card
from .loading import LoadedModel, load_model, save_weights

__all__ = ["InputSpec", "LoadedModel", "ModelCard", "OutputSpec", "card_from_dict", "load_model",
           "read_card", "save_weights"]

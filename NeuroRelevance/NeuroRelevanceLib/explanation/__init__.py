"""The shared core of every explanation method (LRP in ``engine``, the others in ``methods``) and the one
entry point that joins them.

- ``filters``  Tjoa et al.'s pass/clamp fraction filters: one spec, applied to torch tensors or numpy arrays
- ``conservation``  the relative error of a map's total against the explained value (conservation, completeness)
- ``checks``  the input, dtype, model-device and rules-mapping checks every method applies
- ``target``  the target selection (class, regression output, segmentation channel over a mask)
- ``result``  ``Explanation``, what every method returns
- ``layers``  the layer probe and the default layers (Grad-CAM's last convolution block, the cohort's last
  feature map)
- ``working_copy``  the private copy of the model and of the input every method runs on
- ``dispatch``  ``explain(model, x, method=...)``: LRP (``engine``) or another method (``methods``)
- ``keywords``  each method's keyword options and one clear refusal of any other

Dependency direction (``Testing/test_layering.py``): the core modules import neither ``engine`` nor ``methods``;
``engine`` and ``methods`` import the core (the engine also ``keywords``); only ``dispatch`` and ``keywords`` reach
up into both. So this ``__init__`` imports nothing: ``engine`` imports ``explanation.*`` while it loads.
Named ``explanation`` (not ``explain``) so that ``NeuroRelevanceLib.explain`` stays the function.
"""

"""The shared core of every explanation method (LRP in ``engine``, the others in ``methods``).

- ``filters``  Tjoa et al.'s pass/clamp fraction filters: one spec, applied to torch tensors or numpy arrays
- ``conservation``  the relative error of a map's total against the explained value (conservation, completeness)
- ``checks``  the input, dtype, model-device and rules-mapping checks every method applies
- ``target``  the target selection (class, regression output, segmentation channel over a mask)
- ``result``  ``Explanation``, what every method returns
- ``layers``  the layer probe and the default layers (Grad-CAM's last convolution block, the cohort's last
  feature map)

Named ``explanation`` (not ``explain``) so that ``NeuroRelevanceLib.explain`` stays the function.
"""

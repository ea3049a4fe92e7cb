"""l2l: machine unlearning for image-to-image generative models, reproduced on one harness.

Not to be confused with ``learn2learn`` (conventionally imported as ``l2l`` too).

Glossary (one vocabulary everywhere):
    forget     the data (classes or samples) the model must unlearn, D_F.
    retain     the data whose behaviour must be kept, D_R.
    original   the model trained on everything, before unlearning (theta_0, phi_0).
    unlearned  the model after an unlearning method.
    retrain    the reference trained from scratch on retain data only.
    alpha      the weight of the forget term (Li et al. Eq. 10).
    X          an image batch, float [B, 3, H, W] in [0, 1] unless a docstring says otherwise.
"""

__version__ = "0.1.0"

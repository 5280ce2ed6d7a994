"""Training of the de-identification autoencoder: data, losses, loop, export.

``python -m deidvid.train --arch residual --steps N --out runs/x`` trains (and
resumes); ``python -m deidvid.train export --run runs/x`` bundles the weights.
The package itself imports nothing, so ``deidvid.train.data`` and friends load alone.
"""

"""tlcore's Keras 3 backend: keras-jax, keras-tensorflow and keras-torch.

Importing this package imports no framework; see :mod:`tlcore_keras.plugin`.
Keras fixes its backend once per process, so each Keras backend needs its
own process (:mod:`tlcore_keras.select`).
"""

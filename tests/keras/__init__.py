"""Tests of the Keras backends; each Keras backend runs in a process of its own."""

"""Importing this module imports TensorFlow without its C++ start-up lines (tf_quiet.py).

For process preloads, which can only name modules: a forkserver that preloads TensorFlow for its
workers (data/synthetic/world.py) names this module first.
"""
from vidistill import tf_quiet

tf = tf_quiet.import_tensorflow()

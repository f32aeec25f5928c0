"""Registry entries for `reference.posttraining` (post-training methods), one module per reference module."""
